import { InvalidArgumentError, LUA_HELPERS, defineScript, type Script, type ScriptErrorMap } from '@x/redis-core';
import { StreamFencedError, StreamModeConflictError } from './errors';

/** Script error codes mapped to this package's errors. */
export const ERRORS: ScriptErrorMap = {
  STREAM_FENCED: (detail) => new StreamFencedError(detail),
  STREAM_MODE_CONFLICT: (detail) => new StreamModeConflictError(detail),
  INVALID_ARGUMENT: (detail) => new InvalidArgumentError(detail),
};

/**
 * Lua shared by the stream scripts (prepended after redis-core's helpers):
 *
 * - `id_le(a, b)`: stream IDs compared as two unbounded integers, never through a Lua double.
 * - `is_int(x, min, max)`, `bad(msg)`: argument checks (INVALID_ARGUMENT before any write).
 * - `writable(key, type)`: the key is missing or of that type (checked before the first write,
 *   so a WRONGTYPE can never leave a commit half applied).
 * - `fence(G, token, epoch)`: nil while `token` holds the group's lease at `epoch`, else the
 *   STREAM_FENCED error to return.
 * - `pending_counts(...)`: delivery counters of this consumer's pending entries in a range.
 * - `read_batch(out, ...)`: appends `kind, cursor, lastId` and then `id, deliveries, fields`
 *   per message: the consumer's own pending messages first (re-read after a crash or a lost
 *   reply), then (when `claim_idle` > 0) messages idle that long in other consumers' hands,
 *   then new ones; when there is nothing, the stream's last ID (to block after).
 * - `giveback(...)`: hands unprocessed messages back (delivery counter minus the delivery that
 *   never reached a handler; optionally idle enough to be claimed at once).
 * - `trim(key, maxlen, maxage, approx)`: retention of an output or dead-letter stream ('0': none).
 * - `trim_acknowledged(S)`: deletes the source entries every group of S has acknowledged.
 */
export const STREAM_LUA = `${LUA_HELPERS}
local function num_lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function id_le(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if am ~= bm then return num_lt(am, bm) end
  return as == bs or num_lt(as, bs)
end
local function is_int(x, min, max)
  local n = tonumber(x)
  return n ~= nil and n == math.floor(n) and n >= min and n <= max
end
local function bad(msg)
  return redis.error_reply('INVALID_ARGUMENT ' .. msg)
end
local function writable(key, kind)
  local t = redis.call('TYPE', key)
  if type(t) == 'table' then t = t.ok end
  return t == 'none' or t == kind
end
local function wrongtype(key, kind)
  return redis.error_reply('STREAM_WRONGTYPE key ' .. key .. ' holds a value that is not a ' .. kind)
end
local function fence(G, token, epoch)
  local v = redis.call('HMGET', G, 'owner', 'epoch')
  if v[1] ~= token or v[2] ~= epoch then
    return redis.error_reply('STREAM_FENCED the lease at epoch ' .. epoch .. ' is over (the group is at epoch ' .. tostring(v[2] or 'none') .. ')')
  end
  return nil
end
local function pending_counts(S, group, consumer, first, last, n)
  local counts = {}
  local p = redis.call('XPENDING', S, group, first, last, n, consumer)
  for _, e in ipairs(p) do counts[e[1]] = e[4] end
  return counts, #p
end
local function push_entries(out, entries, counts)
  for _, e in ipairs(entries) do
    out[#out + 1] = e[1]
    out[#out + 1] = counts and (counts[e[1]] or 1) or 1
    out[#out + 1] = e[2]
  end
end
local function read_batch(out, S, group, consumer, count, claim_idle, cursor)
  local mine = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', S, '0')[1][2]
  if #mine > 0 then
    out[#out + 1] = 'pending'; out[#out + 1] = ''; out[#out + 1] = ''
    push_entries(out, mine, pending_counts(S, group, consumer, mine[1][1], mine[#mine][1], #mine))
    return
  end
  local next_cursor = ''
  if claim_idle > 0 then
    local c = redis.call('XAUTOCLAIM', S, group, consumer, claim_idle, cursor, 'COUNT', count)
    next_cursor = c[1]
    local claimed = c[2]
    if #claimed > 0 then
      out[#out + 1] = 'claimed'; out[#out + 1] = next_cursor; out[#out + 1] = ''
      push_entries(out, claimed, pending_counts(S, group, consumer, claimed[1][1], claimed[#claimed][1], #claimed))
      return
    end
  end
  local new = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', S, '>')
  if new then
    out[#out + 1] = 'new'; out[#out + 1] = next_cursor; out[#out + 1] = ''
    push_entries(out, new[1][2], nil)
    return
  end
  local last = redis.call('XREVRANGE', S, '+', '-', 'COUNT', 1)
  out[#out + 1] = 'empty'; out[#out + 1] = next_cursor
  out[#out + 1] = last[1] and last[1][1] or '0-0'
end
local function giveback(S, group, consumer, first_arg, idle)
  for i = first_arg, #ARGV do
    local p = redis.call('XPENDING', S, group, ARGV[i], ARGV[i], 1, consumer)
    if p[1] then
      if idle then
        redis.call('XCLAIM', S, group, consumer, 0, ARGV[i], 'IDLE', idle, 'RETRYCOUNT', math.max(0, p[1][4] - 1), 'JUSTID')
      else
        redis.call('XCLAIM', S, group, consumer, 0, ARGV[i], 'RETRYCOUNT', math.max(0, p[1][4] - 1), 'JUSTID')
      end
    end
  end
end
local function parse_pubs(a, with_owner)
  local np = tonumber(ARGV[a])
  if not is_int(np, 0, 1000000) then return nil, 'malformed publish count' end
  local pubs = {}
  local i = a + 1
  for p = 1, np do
    local owner = nil
    if with_owner then owner = tonumber(ARGV[i]); i = i + 1 end
    local k = tonumber(ARGV[i])
    local nf = tonumber(ARGV[i + 1])
    if not is_int(k, 3, #KEYS) or not is_int(nf, 2, 1000000) or nf % 2 == 1 then return nil, 'malformed publish ' .. p end
    pubs[p] = { key = KEYS[k], first = i + 2, last = i + 1 + nf, owner = owner }
    i = i + 2 + nf
  end
  if i - 1 ~= #ARGV then return nil, 'trailing arguments' end
  return pubs
end
local function trim(key, maxlen, maxage, approx)
  if maxlen ~= '0' then
    if approx == '1' then redis.call('XTRIM', key, 'MAXLEN', '~', maxlen) else redis.call('XTRIM', key, 'MAXLEN', maxlen) end
  end
  if maxage ~= '0' then
    local min = int(now_ms() - tonumber(maxage)) .. '-0'
    if approx == '1' then redis.call('XTRIM', key, 'MINID', '~', min) else redis.call('XTRIM', key, 'MINID', min) end
  end
end
local function trim_ok(maxlen, maxage, approx)
  return is_int(maxlen, 0, 9007199254740991) and is_int(maxage, 0, 1e15) and (approx == '0' or approx == '1')
end
local function trim_outputs(pubs, maxlen, maxage, approx)
  if maxlen == '0' and maxage == '0' then return end
  local done = {}
  for _, p in ipairs(pubs) do
    if not done[p.key] then
      done[p.key] = true
      trim(p.key, maxlen, maxage, approx)
    end
  end
end
local function trim_acknowledged(S)
  local bound = nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    -- Everything below the oldest entry still pending in this group, or (nothing pending) at or
    -- below its last delivered entry, has been acknowledged by it.
    local b = info['last-delivered-id']
    if info.pending > 0 then b = redis.call('XPENDING', S, info.name)[2] end
    if not bound or not id_le(bound, b) then bound = b end
  end
  -- MINID removes entries strictly below the bound; '~' only whole nodes below it.
  if bound and bound ~= '0-0' then redis.call('XTRIM', S, 'MINID', '~', bound) end
end
local function ascending(ids)
  for i = 2, #ids do
    if id_le(ids[i], ids[i - 1]) then return false end
  end
  return true
end
`;

/**
 * A script whose KEYS end with a variable number of output streams: one definition per count
 * (same source, same SHA), because a script's key count is fixed.
 */
export function variadicScript(definition: { name: string; keys: readonly string[]; source: string }): (outputs: number) => Script {
  const byCount = new Map<number, Script>();
  return (outputs) => {
    let script = byCount.get(outputs);
    if (!script) {
      const keys = [...definition.keys, ...Array.from({ length: outputs }, (_, i) => `output${i + 1}`)];
      script = defineScript({ ...definition, keys, errors: ERRORS });
      byCount.set(outputs, script);
    }
    return script;
  };
}
