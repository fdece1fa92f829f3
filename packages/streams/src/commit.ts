import { STREAM_LUA, variadicScript } from './lua';

/**
 * The stateful commit: one script validates everything before its first write (the lease epoch,
 * every message still pending for the processor, every output a stream), then writes the
 * state, the position, every publish (XADD) and the XACK of the batch, extends the lease, and
 * (when asked) reads the next batch, so that steady state costs about one round trip per batch.
 * A resent commit whose reply was lost finds its last ID at or below the committed position:
 * it writes nothing and answers the same (`committed`, then the same next batch, re-read from
 * the pending list).
 *
 * KEYS: group hash, source stream, output streams...
 * ARGV: token, epoch, group, consumer, leaseMs, readCount, hasState (1|0), state,
 *       trimSource (1|0), output maxLen, output maxAgeMs, output approximate (1|0),
 *       n, id1..idn, publishes (count, then per publish: key index, 2m, f1, v1, ... fm, vm)
 * After the writes, each output is trimmed as asked (maxLen / maxAgeMs '0': not), and with
 * trimSource the source loses the entries every group has acknowledged.
 * Reply: 'committed', expiresAt, then a read (see read_batch) if asked.
 */
export const commitStatefulScript = variadicScript({
  name: 'streams.commit-stateful',
  keys: ['group', 'stream'],
  source: `${STREAM_LUA}
local G, S = KEYS[1], KEYS[2]
local token, epoch, group, consumer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not is_int(ARGV[5], 1, 2147483647) then return bad('leaseMs must be a positive integer') end
if not is_int(ARGV[6], 0, 1000) then return bad('readCount must be an integer from 0 to 1000') end
if not trim_ok(ARGV[10], ARGV[11], ARGV[12]) then return bad('malformed retention') end
if not is_int(ARGV[13], 1, 1000) then return bad('a commit holds 1 to 1000 messages') end
local n = tonumber(ARGV[13])
local ids = {}
for i = 1, n do ids[i] = ARGV[13 + i] end
if not ascending(ids) then return bad('message ids must ascend') end
local pubs, perr = parse_pubs(14 + n, false)
if not pubs then return bad(perr) end
local err = fence(G, token, epoch)
if err then return err end
local pos = redis.call('HGET', G, 'pos')
if not (pos and id_le(ids[n], pos)) then
  if pos and id_le(ids[1], pos) then
    return redis.error_reply('STREAM_FENCED message ' .. ids[1] .. ' is at or below the committed position ' .. pos)
  end
  local counts, seen = pending_counts(S, group, consumer, ids[1], ids[n], n)
  for i = 1, n do
    if not counts[ids[i]] then
      local p = redis.call('XPENDING', S, group, ids[i], ids[i], 1, consumer)
      if not p[1] then return redis.error_reply('STREAM_FENCED message ' .. ids[i] .. ' is not pending for this processor') end
    end
  end
  if not writable(G, 'hash') then return wrongtype(G, 'hash') end
  for _, p in ipairs(pubs) do
    if not writable(p.key, 'stream') then return wrongtype(p.key, 'stream') end
  end
  if ARGV[7] == '1' then redis.call('HSET', G, 'state', ARGV[8], 'pos', ids[n])
  else redis.call('HSET', G, 'pos', ids[n]) end
  for _, p in ipairs(pubs) do redis.call('XADD', p.key, '*', unpack(ARGV, p.first, p.last)) end
  redis.call('XACK', S, group, unpack(ids))
  trim_outputs(pubs, ARGV[10], ARGV[11], ARGV[12])
  if ARGV[9] == '1' then trim_acknowledged(S) end
end
local expires = now_ms() + tonumber(ARGV[5])
redis.call('HSET', G, 'expires', expires)
local out = {'committed', expires}
if tonumber(ARGV[6]) > 0 then read_batch(out, S, group, consumer, ARGV[6], 0, '0-0') end
return out`,
});

/**
 * The competing commit: per message, its publishes and its XACK apply only if the message is
 * still pending for this consumer (one claimed by another consumer meanwhile is left to that
 * one, and reported back as lost). All checks run before the first write. A marker per consumer
 * (`c:<consumer>` = commit sequence number and the lost IDs) makes a resent commit a no-op that
 * answers the same.
 *
 * KEYS: group hash, source stream, output streams...
 * ARGV: group, consumer, seq, readCount, claimIdleMs, cursor,
 *       trimSource (1|0), output maxLen, output maxAgeMs, output approximate (1|0), n, id1..idn,
 *       publishes (count, then per publish: message index, key index, 2m, f1, v1, ...)
 * Reply: 'committed', lost ids (comma-separated), then a read if asked.
 */
export const commitCompetingScript = variadicScript({
  name: 'streams.commit-competing',
  keys: ['group', 'stream'],
  source: `${STREAM_LUA}
local G, S = KEYS[1], KEYS[2]
local group, consumer, seq = ARGV[1], ARGV[2], ARGV[3]
if not is_int(ARGV[4], 0, 1000) then return bad('readCount must be an integer from 0 to 1000') end
if not is_int(ARGV[5], 0, 2147483647) then return bad('claimIdleMs must be an integer') end
if not trim_ok(ARGV[8], ARGV[9], ARGV[10]) then return bad('malformed retention') end
if not is_int(ARGV[11], 1, 1000) then return bad('a commit holds 1 to 1000 messages') end
local n = tonumber(ARGV[11])
local ids = {}
for i = 1, n do ids[i] = ARGV[11 + i] end
if not ascending(ids) then return bad('message ids must ascend') end
local pubs, perr = parse_pubs(12 + n, true)
if not pubs then return bad(perr) end
local marker = redis.call('HGET', G, 'c:' .. consumer)
local lost
if marker and string.sub(marker, 1, #seq + 1) == seq .. ' ' then
  lost = string.sub(marker, #seq + 2)
else
  local counts = pending_counts(S, group, consumer, ids[1], ids[n], n)
  local owned, mine, gone = {}, {}, {}
  for i = 1, n do
    local ok = counts[ids[i]] ~= nil
    if not ok then ok = redis.call('XPENDING', S, group, ids[i], ids[i], 1, consumer)[1] ~= nil end
    owned[i] = ok
    if ok then mine[#mine + 1] = ids[i] else gone[#gone + 1] = ids[i] end
  end
  if not writable(G, 'hash') then return wrongtype(G, 'hash') end
  for _, p in ipairs(pubs) do
    if not is_int(p.owner, 1, n) then return bad('malformed publish owner') end
    if owned[p.owner] and not writable(p.key, 'stream') then return wrongtype(p.key, 'stream') end
  end
  for _, p in ipairs(pubs) do
    if owned[p.owner] then redis.call('XADD', p.key, '*', unpack(ARGV, p.first, p.last)) end
  end
  if #mine > 0 then redis.call('XACK', S, group, unpack(mine)) end
  trim_outputs(pubs, ARGV[8], ARGV[9], ARGV[10])
  if ARGV[7] == '1' then trim_acknowledged(S) end
  lost = table.concat(gone, ',')
  redis.call('HSET', G, 'c:' .. consumer, seq .. ' ' .. lost)
end
local out = {'committed', lost}
if tonumber(ARGV[4]) > 0 then read_batch(out, S, group, consumer, ARGV[4], tonumber(ARGV[5]), ARGV[6] ~= '' and ARGV[6] or '0-0') end
return out`,
});
