import { LUA_HELPERS, defineScript, type Script } from '@x/redis-core';
import { QUOTA_ERRORS } from './errors';

/**
 * What every quota script starts with. All keys of one resource share one hash tag and are
 * passed in KEYS; no key is built here.
 *
 * KEYS[1] state         hash: available reserved leased consumed supplied version (decimal strings),
 *                       next (no hold, lease or receipt falls due before it)
 * KEYS[2] holds         hash: reservationId -> "amount|expiresAtMs"          (pending holds only)
 * KEYS[3] holds:expiry  zset: reservationId scored by expiresAtMs
 * KEYS[4] leases        hash: leaseId -> "granted|remaining|expiresAtMs|ownerId" (active leases only)
 * KEYS[5] leases:expiry zset: leaseId scored by expiresAtMs
 * KEYS[6] receipts      hash: "r:<reservationId>" / "l:<leaseId>" -> "<status>|..." (terminal outcomes)
 * KEYS[7] receipts:expiry zset: receipt field scored by the time it may be forgotten
 * ARGV[1] receiptTtlMs
 *
 * Amounts travel as decimal strings and are written back with int(): Lua numbers are doubles,
 * exact for every integer up to 2^53 - 1, and the state never holds more than that (topUp and
 * setAvailable refuse to take `supplied` past it, and every other field is part of `supplied`).
 *
 * begin() reads the state and the clock, then reclaims every expired hold and lease (popped from
 * the expiry indexes, so the cost is O(expired), never O(pending)), with no bound: a request is
 * decided only after everything that expired is back in `available`.
 */
const CORE = `
local MAX = 9007199254740991
local BATCH = 500
local K_STATE, K_HOLDS, K_HEXP, K_LEASES, K_LEXP, K_RCPT, K_REXP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local RECEIPT_TTL = tonumber(ARGV[1])
local FIELDS = { 'available', 'reserved', 'leased', 'consumed', 'supplied', 'version' }
local S = {}
local NOW, V0 = 0, 0
-- NEXT: no hold, lease or receipt is due before this time (a lower bound, kept in the state hash),
-- so a call with nothing due skips the expiry indexes altogether.
local NEXT, NEXT0, EXISTS = 0, 0, false

-- Raised from anywhere; the script's last lines turn it into a CORRUPT_STATE reply.
local function corrupt(what)
  error({ corrupt = what })
end

-- A decimal string of digits only, within [min, max]; nil otherwise.
local function num(s, min, max)
  if type(s) ~= 'string' or #s == 0 or #s > 16 or not string.find(s, '^%d+$') then return nil end
  local n = tonumber(s)
  if n < min or n > max then return nil end
  return n
end

local function invalid(what)
  return redis.error_reply('INVALID_ARGUMENT ' .. what)
end

-- The answer stored by an earlier direct call (consume or topup) under its idempotency record:
-- nil when there is none; the record's fields { amount, flag, balance, operationId } when it was
-- the same request; and, second, an IDEMPOTENCY_CONFLICT reply to return when it was another.
local function replayed(record_key, kind, amount)
  local rec = redis.call('GET', record_key)
  if not rec then return nil end
  local k, a, flag, balance, op = string.match(rec, '^(%a+)|(%d+)|(%d)|(%d+)|(.*)$')
  if not k then corrupt('idempotency record') end
  if k ~= kind or num(a, 1, MAX) ~= amount then
    return nil, redis.error_reply('IDEMPOTENCY_CONFLICT the idempotency key was used for another request (' .. k .. ' of ' .. a .. ')')
  end
  return { a, flag, balance, op }
end

-- State fields are written only by these scripts (with int()); a quick check is enough to notice a
-- hand-edited value.
local function field(v, name)
  if not v then return 0 end
  local n = tonumber(v)
  if not n or n < 0 or n > MAX or n % 1 ~= 0 then corrupt('state field ' .. name .. ' is not an integer') end
  EXISTS = true
  return n
end

local S0 = {}
local function load()
  local v = redis.call('HMGET', K_STATE, 'available', 'reserved', 'leased', 'consumed', 'supplied', 'version', 'next')
  for i = 1, 6 do
    local name = FIELDS[i]
    local n = field(v[i], name)
    S[name] = n
    S0[name] = n
  end
  V0 = S.version
  NEXT = (v[7] and tonumber(v[7])) or 0
  NEXT0 = NEXT
end

-- Something (a hold, a lease, a receipt) falls due at t.
local function due(t)
  if t < NEXT then NEXT = t end
end

-- Writes the fields that changed; the version goes up once per script, however often it is saved.
local function save()
  S.version = V0 + 1
  local args = { 'version', int(S.version) }
  for i = 1, 5 do
    local name = FIELDS[i]
    if S[name] ~= S0[name] then
      args[#args + 1] = name
      args[#args + 1] = int(S[name])
      S0[name] = S[name]
    end
  end
  if NEXT ~= NEXT0 or not EXISTS then
    args[#args + 1] = 'next'
    args[#args + 1] = int(NEXT)
  end
  redis.call('HSET', K_STATE, unpack(args))
  NEXT0, EXISTS = NEXT, true
end

-- Writes the NEXT hint alone (when no balance changed), for a resource that exists.
local function save_next()
  if NEXT ~= NEXT0 and EXISTS then
    redis.call('HSET', K_STATE, 'next', int(NEXT))
    NEXT0 = NEXT
  end
end

`;

/** Parsing of holds and leases, receipts, and the reclaim itself. */
const RECLAIM = `
local function parse_hold(rec, id)
  local a, e = string.match(rec, '^(%d+)|(%d+)$')
  a, e = num(a, 1, MAX), num(e, 0, MAX)
  if not (a and e) then corrupt('hold ' .. id) end
  return a, e
end

local function parse_lease(rec, id)
  local g, r, e, o = string.match(rec, '^(%d+)|(%d+)|(%d+)|(.+)$')
  g, r, e = num(g, 0, MAX), num(r, 0, MAX), num(e, 0, MAX)
  if not (g and r and e and o) then corrupt('lease ' .. id) end
  return g, r, e, o
end

local function lease_rec(g, r, e, o)
  return int(g) .. '|' .. int(r) .. '|' .. int(e) .. '|' .. o
end

-- fv = { field1, value1, field2, value2, ... }
local function put_receipts(fv)
  if #fv == 0 then return end
  due(NOW + RECEIPT_TTL)
  local at = int(NOW + RECEIPT_TTL)
  local z = {}
  for i = 1, #fv, 2 do
    z[#z + 1] = at
    z[#z + 1] = fv[i]
  end
  redis.call('HSET', K_RCPT, unpack(fv))
  redis.call('ZADD', K_REXP, unpack(z))
  keep_for(K_RCPT, RECEIPT_TTL)
  keep_for(K_REXP, RECEIPT_TTL)
end

local function receipt_status(field)
  local rc = redis.call('HGET', K_RCPT, field)
  if not rc then return nil, nil end
  local status = string.match(rc, '^(%a+)|')
  if not status then corrupt('receipt ' .. field) end
  return status, rc
end

local function reclaim()
  if NEXT >= MAX or NOW < NEXT then return end
  local changed = false
  while true do
    local ids = redis.call('ZRANGEBYSCORE', K_HEXP, '-inf', NOW, 'LIMIT', 0, BATCH)
    if #ids == 0 then break end
    local recs = redis.call('HMGET', K_HOLDS, unpack(ids))
    local fv = {}
    for i = 1, #ids do
      if recs[i] then
        local a = parse_hold(recs[i], ids[i])
        S.available = S.available + a
        S.reserved = S.reserved - a
        fv[#fv + 1] = 'r:' .. ids[i]
        fv[#fv + 1] = 'expired|' .. recs[i]
      end
    end
    redis.call('HDEL', K_HOLDS, unpack(ids))
    redis.call('ZREM', K_HEXP, unpack(ids))
    put_receipts(fv)
    changed = true
  end
  while true do
    local ids = redis.call('ZRANGEBYSCORE', K_LEXP, '-inf', NOW, 'LIMIT', 0, BATCH)
    if #ids == 0 then break end
    local recs = redis.call('HMGET', K_LEASES, unpack(ids))
    local fv = {}
    for i = 1, #ids do
      if recs[i] then
        local _, r = parse_lease(recs[i], ids[i])
        S.available = S.available + r
        S.leased = S.leased - r
        fv[#fv + 1] = 'l:' .. ids[i]
        fv[#fv + 1] = 'expired|' .. recs[i]
      end
    end
    redis.call('HDEL', K_LEASES, unpack(ids))
    redis.call('ZREM', K_LEXP, unpack(ids))
    put_receipts(fv)
    changed = true
  end
  -- Forgetting old receipts only frees memory, so it may be bounded per call.
  local old = redis.call('ZRANGEBYSCORE', K_REXP, '-inf', NOW, 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', K_RCPT, unpack(old))
    redis.call('ZREM', K_REXP, unpack(old))
  end
  -- Everything due is done: the next call need not look before the earliest entry left.
  NEXT = MAX
  for _, z in ipairs({ K_HEXP, K_LEXP, K_REXP }) do
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if first[2] then due(tonumber(first[2])) end
  end
  if changed then save() else save_next() end
end

`;

/**
 * The prelude of a script. Scripts that work on holds or leases need the record helpers anyway;
 * the direct-path scripts (the hot ones) define them only when something is due, so a call with
 * nothing to reclaim does not pay for building them.
 *
 * begin(clock): clock means the script itself needs the time. Without it, and with nothing
 * pending (NEXT = MAX), the server clock is not even read.
 */
function prelude(lazy: boolean): string {
  return `${CORE}${lazy ? '' : RECLAIM}
local function begin(clock)
  load()
  if clock or NEXT < MAX then NOW = now_ms() end
  if NEXT < MAX and NOW >= NEXT then
${lazy ? RECLAIM : ''}
    reclaim()
  end
end
`;
}

/** The keys every quota script takes first, in this order. */
export const COMMON_KEYS = ['state', 'holds', 'holds:expiry', 'leases', 'leases:expiry', 'receipts', 'receipts:expiry'] as const;

/**
 * Defines one quota script: the shared prelude, then `body` (run inside `main()`, so that a
 * corrupt record found anywhere comes back as a CORRUPT_STATE reply). `extraKeys` come after the
 * common keys (KEYS[8], ...). `lazy`: the body uses none of the hold and lease helpers.
 *
 * @example
 * const get = quotaScript('quota.x', [], `begin() return int(S.available)`);
 */
export function quotaScript(name: string, extraKeys: readonly string[], body: string, options: { lazy?: boolean } = {}): Script {
  return defineScript({
    name,
    keys: [...COMMON_KEYS, ...extraKeys],
    source: `${LUA_HELPERS}${prelude(options.lazy ?? false)}
local function main()
${body}
end
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' and res.corrupt then return redis.error_reply('CORRUPT_STATE ' .. res.corrupt) end
error(res)
`,
    errors: QUOTA_ERRORS,
  });
}
