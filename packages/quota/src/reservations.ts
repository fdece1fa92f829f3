import { quotaScript } from './lua';

/**
 * reserve. ARGV[2] amount, ARGV[3] ttlMs, ARGV[4] reservationId.
 * Reply: { amount, expiresAtMs } (a replay of a pending hold returns the same hold).
 */
export const reserveScript = quotaScript(
  'quota.reserve',
  [],
  `
local amount = num(ARGV[2], 1, MAX)
if not amount then return invalid('amount must be an integer from 1 to 2^53 - 1') end
local ttl = num(ARGV[3], 1, 2147483647)
if not ttl then return invalid('ttlMs must be an integer from 1 to 2^31 - 1') end
local id = ARGV[4]
if #id == 0 then return invalid('reservationId must be a non-empty string') end
begin(true)
local rec = redis.call('HGET', K_HOLDS, id)
if rec then
  local a, e = parse_hold(rec, id)
  if a ~= amount then
    return redis.error_reply('IDEMPOTENCY_CONFLICT this reservation id holds ' .. int(a) .. ', not ' .. int(amount))
  end
  return { int(a), int(e) }
end
local status = receipt_status('r:' .. id)
if status == 'expired' then return redis.error_reply('RESERVATION_EXPIRED the reservation with this id expired') end
if status == 'committed' then
  return redis.error_reply('RESERVATION_ALREADY_COMMITTED the reservation with this id was committed')
end
if status then
  return redis.error_reply('IDEMPOTENCY_CONFLICT this reservation id was used by a reservation that was ' .. status)
end
if S.available < amount then
  return redis.error_reply('INSUFFICIENT_QUOTA ' .. int(amount) .. ' requested, ' .. int(S.available) .. ' available')
end
S.available = S.available - amount
S.reserved = S.reserved + amount
local e = NOW + ttl
redis.call('HSET', K_HOLDS, id, int(amount) .. '|' .. int(e))
redis.call('ZADD', K_HEXP, int(e), id)
due(e)
save()
return { int(amount), int(e) }
`,
);

/**
 * commit. ARGV[2] reservationId, ARGV[3] operationId, ARGV[4] amount ('' = the whole hold).
 * Reply: { committed amount, remaining available, operationId }; a replay returns the first one.
 */
export const commitScript = quotaScript(
  'quota.commit',
  [],
  `
local id = ARGV[2]
local want = nil
if ARGV[4] ~= '' then
  want = num(ARGV[4], 1, MAX)
  if not want then return invalid('amount must be an integer from 1 to 2^53 - 1') end
end
begin(true)
local rec = redis.call('HGET', K_HOLDS, id)
if not rec then
  local status, rc = receipt_status('r:' .. id)
  if status == 'committed' then
    local c, rem, op = string.match(rc, '^committed|%d+|%d+|(%d+)|(%d+)|(.*)$')
    if not op then corrupt('receipt of a committed reservation') end
    if want and num(c, 1, MAX) ~= want then
      return redis.error_reply('IDEMPOTENCY_CONFLICT the reservation was committed for ' .. c .. ', not ' .. int(want))
    end
    return { c, rem, op }
  end
  if status == 'expired' then return redis.error_reply('RESERVATION_EXPIRED the reservation expired before it was committed') end
  if status == 'cancelled' then return redis.error_reply('RESERVATION_NOT_FOUND the reservation was cancelled') end
  return redis.error_reply('RESERVATION_NOT_FOUND no reservation with this id (never made, or forgotten)')
end
local a, e = parse_hold(rec, id)
local take = want or a
if take > a then
  return invalid('commit amount ' .. int(take) .. ' exceeds the held amount ' .. int(a))
end
S.reserved = S.reserved - a
S.consumed = S.consumed + take
S.available = S.available + (a - take)
redis.call('HDEL', K_HOLDS, id)
redis.call('ZREM', K_HEXP, id)
put_receipts({ 'r:' .. id, 'committed|' .. rec .. '|' .. int(take) .. '|' .. int(S.available) .. '|' .. ARGV[3] })
save()
return { int(take), int(S.available), ARGV[3] }
`,
);

/**
 * cancel. ARGV[2] reservationId.
 * Reply: 1 for a hold that was pending, cancelled or expired; 0 for an unknown or committed one.
 */
export const cancelScript = quotaScript(
  'quota.cancel',
  [],
  `
local id = ARGV[2]
begin(true)
local rec = redis.call('HGET', K_HOLDS, id)
if rec then
  local a = parse_hold(rec, id)
  S.available = S.available + a
  S.reserved = S.reserved - a
  redis.call('HDEL', K_HOLDS, id)
  redis.call('ZREM', K_HEXP, id)
  put_receipts({ 'r:' .. id, 'cancelled|' .. rec })
  save()
  return 1
end
local status = receipt_status('r:' .. id)
if status == 'cancelled' or status == 'expired' then return 1 end
return 0
`,
);
