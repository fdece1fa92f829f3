import { quotaScript } from './lua';

/** Shared by the chunk scripts: the error for a lease that is not active (any more). */
export const LEASE_HELPERS = `
local function lease_gone(id)
  local status = receipt_status('l:' .. id)
  if status == 'expired' then return redis.error_reply('LEASE_EXPIRED the lease expired') end
  if status == 'released' then return redis.error_reply('LEASE_ALREADY_RELEASED the lease was released') end
  if status then corrupt('lease receipt') end
  return redis.error_reply('LEASE_NOT_FOUND no lease with this id (never allocated, or forgotten)')
end
local function not_owner()
  return redis.error_reply('LEASE_OWNERSHIP_MISMATCH the lease belongs to another owner')
end
`;

/**
 * allocateChunk. ARGV[2] amount, ARGV[3] ttlMs, ARGV[4] ownerId, ARGV[5] leaseId.
 * Reply: { status, granted, remaining, expiresAtMs, ownerId } (a replay returns the lease as it is).
 */
export const allocateScript = quotaScript(
  'quota.allocateChunk',
  [],
  LEASE_HELPERS +
    `
local amount = num(ARGV[2], 1, MAX)
if not amount then return invalid('amount must be an integer from 1 to 2^53 - 1') end
local ttl = num(ARGV[3], 1, 2147483647)
if not ttl then return invalid('ttlMs must be an integer from 1 to 2^31 - 1') end
local owner, id = ARGV[4], ARGV[5]
if #owner == 0 or #id == 0 then return invalid('ownerId and leaseId must be non-empty strings') end
begin(true)
local rec = redis.call('HGET', K_LEASES, id)
if rec then
  local g, r, e, o = parse_lease(rec, id)
  if o ~= owner or g ~= amount then
    return redis.error_reply('IDEMPOTENCY_CONFLICT this lease id belongs to a lease of another owner or amount')
  end
  return { 'active', int(g), int(r), int(e), o }
end
local status = receipt_status('l:' .. id)
if status then return lease_gone(id) end
if S.available < amount then
  return redis.error_reply('INSUFFICIENT_QUOTA ' .. int(amount) .. ' requested, ' .. int(S.available) .. ' available')
end
S.available = S.available - amount
S.leased = S.leased + amount
local e = NOW + ttl
redis.call('HSET', K_LEASES, id, lease_rec(amount, amount, e, owner))
redis.call('ZADD', K_LEXP, int(e), id)
due(e)
save()
return { 'active', int(amount), int(amount), int(e), owner }
`,
);

/**
 * consumeChunk. KEYS[8] the operation record. ARGV[2] leaseId, ARGV[3] ownerId, ARGV[4] amount,
 * ARGV[5] idempotencyTtlMs ('0': no operation id was given, nothing to replay).
 * Reply: { applied (0|1), remaining, expiresAtMs }.
 */
export const consumeChunkScript = quotaScript(
  'quota.consumeChunk',
  ['record'],
  LEASE_HELPERS +
    `
local id, owner = ARGV[2], ARGV[3]
if #owner == 0 or #id == 0 then return invalid('ownerId and leaseId must be non-empty strings') end
local amount = num(ARGV[4], 1, MAX)
if not amount then return invalid('amount must be an integer from 1 to 2^53 - 1') end
local op_ttl = num(ARGV[5], 0, MAX)
if not op_ttl then return invalid('idempotencyTtlMs must be an integer') end
begin(true)
local tail = #id .. '|' .. id .. owner
if op_ttl > 0 then
  local prev = redis.call('GET', KEYS[8])
  if prev then
    local a, applied, r, e, t = string.match(prev, '^chunk|(%d+)|(%d)|(%d+)|(%d+)|(.*)$')
    if not a then
      if string.find(prev, '^sync|') then
        return redis.error_reply('IDEMPOTENCY_CONFLICT this operation id was used for another request')
      end
      corrupt('operation record')
    end
    if num(a, 1, MAX) ~= amount or t ~= tail then
      return redis.error_reply('IDEMPOTENCY_CONFLICT this operation id was used for another amount, lease or owner')
    end
    return { tonumber(applied), r, e }
  end
end
local rec = redis.call('HGET', K_LEASES, id)
if not rec then return lease_gone(id) end
local g, r, e, o = parse_lease(rec, id)
if o ~= owner then return not_owner() end
local applied = 0
if r >= amount then
  r = r - amount
  S.leased = S.leased - amount
  S.consumed = S.consumed + amount
  applied = 1
  redis.call('HSET', K_LEASES, id, lease_rec(g, r, e, o))
  save()
end
if op_ttl > 0 then
  redis.call('SET', KEYS[8], 'chunk|' .. int(amount) .. '|' .. applied .. '|' .. int(r) .. '|' .. int(e) .. '|' .. tail, 'PX', op_ttl)
end
return { applied, int(r), int(e) }
`,
);

/**
 * renewChunk. ARGV[2] leaseId, ARGV[3] ownerId, ARGV[4] ttlMs.
 * Reply: { status, granted, remaining, expiresAtMs, ownerId }.
 */
export const renewScript = quotaScript(
  'quota.renewChunk',
  [],
  LEASE_HELPERS +
    `
local id, owner = ARGV[2], ARGV[3]
if #owner == 0 or #id == 0 then return invalid('ownerId and leaseId must be non-empty strings') end
local ttl = num(ARGV[4], 1, 2147483647)
if not ttl then return invalid('ttlMs must be an integer from 1 to 2^31 - 1') end
begin(true)
local rec = redis.call('HGET', K_LEASES, id)
if not rec then return lease_gone(id) end
local g, r, _, o = parse_lease(rec, id)
if o ~= owner then return not_owner() end
local e = NOW + ttl
redis.call('HSET', K_LEASES, id, lease_rec(g, r, e, o))
redis.call('ZADD', K_LEXP, int(e), id)
due(e)
save_next()
return { 'active', int(g), int(r), int(e), o }
`,
);

/**
 * releaseChunk. ARGV[2] leaseId, ARGV[3] ownerId. The lease's remaining units go back to
 * `available`. Reply: { 'released', granted, units given back, released at, ownerId }; for a lease
 * released before (its receipt kept), the same reply again.
 */
export const releaseScript = quotaScript(
  'quota.releaseChunk',
  [],
  LEASE_HELPERS +
    `
local id, owner = ARGV[2], ARGV[3]
if #owner == 0 or #id == 0 then return invalid('ownerId and leaseId must be non-empty strings') end
begin(true)
local rec = redis.call('HGET', K_LEASES, id)
if not rec then
  -- Released already (a retry, or a second call): the first release's result, while its receipt is kept.
  local status, rc = receipt_status('l:' .. id)
  if status ~= 'released' then return lease_gone(id) end
  local rg, rr, re, ro = parse_lease(string.sub(rc, #status + 2), id)
  if ro ~= owner then return not_owner() end
  return { 'released', int(rg), int(rr), int(re), ro }
end
local g, r, _, o = parse_lease(rec, id)
if o ~= owner then return not_owner() end
S.available = S.available + r
S.leased = S.leased - r
redis.call('HDEL', K_LEASES, id)
redis.call('ZREM', K_LEXP, id)
put_receipts({ 'l:' .. id, 'released|' .. lease_rec(g, r, NOW, o) })
save()
return { 'released', int(g), int(r), int(NOW), o }
`,
);

/**
 * getChunk. ARGV[2] leaseId.
 * Reply: { status, granted, remaining, expiresAtMs, ownerId }, or nil for an unknown lease.
 */
export const getChunkScript = quotaScript(
  'quota.getChunk',
  [],
  `
local id = ARGV[2]
begin(true)
local rec = redis.call('HGET', K_LEASES, id)
if rec then
  local g, r, e, o = parse_lease(rec, id)
  return { 'active', int(g), int(r), int(e), o }
end
local status, rc = receipt_status('l:' .. id)
if not status then return false end
local g, r, e, o = parse_lease(string.sub(rc, #status + 2), id)
return { status, int(g), int(r), int(e), o }
`,
);
