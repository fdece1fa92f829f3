import { quotaScript } from './lua';

const AMOUNT_ERROR = `invalid('amount must be an integer from 1 to 2^53 - 1')`;

/**
 * tryConsume. KEYS[8] the idempotency record (untouched without a key).
 * ARGV[2] amount, ARGV[3] operationId, ARGV[4] idempotencyTtlMs ('0': no idempotency key).
 * Reply: { applied (0|1), remaining, operationId }.
 */
export const consumeScript = quotaScript(
  'quota.tryConsume',
  ['record'],
  `
local amount = num(ARGV[2], 1, MAX)
if not amount then return ${AMOUNT_ERROR} end
local idem_ttl = num(ARGV[4], 0, MAX)
if not idem_ttl then return invalid('idempotencyTtlMs must be an integer') end
begin()
if idem_ttl > 0 then
  local prior, conflict = replayed(KEYS[8], 'consume', amount)
  if conflict then return conflict end
  if prior then return { tonumber(prior[2]), prior[3], prior[4] } end
end
local applied = 0
if S.available >= amount then
  S.available = S.available - amount
  S.consumed = S.consumed + amount
  applied = 1
  save()
end
local remaining = int(S.available)
if idem_ttl > 0 then
  redis.call('SET', KEYS[8], 'consume|' .. int(amount) .. '|' .. applied .. '|' .. remaining .. '|' .. ARGV[3], 'PX', idem_ttl)
end
return { applied, remaining, ARGV[3] }
`,
  { lazy: true },
);

/**
 * topUp. KEYS[8] the idempotency record. ARGV as tryConsume.
 * Reply: { added, available, operationId }.
 */
export const topUpScript = quotaScript(
  'quota.topUp',
  ['record'],
  `
local amount = num(ARGV[2], 1, MAX)
if not amount then return ${AMOUNT_ERROR} end
local idem_ttl = num(ARGV[4], 0, MAX)
if not idem_ttl then return invalid('idempotencyTtlMs must be an integer') end
begin()
if idem_ttl > 0 then
  local prior, conflict = replayed(KEYS[8], 'topup', amount)
  if conflict then return conflict end
  if prior then return { prior[1], prior[3], prior[4] } end
end
if S.supplied + amount > MAX then
  return invalid('topUp would take the total supplied (' .. int(S.supplied) .. ') past 2^53 - 1')
end
S.available = S.available + amount
S.supplied = S.supplied + amount
save()
local available = int(S.available)
if idem_ttl > 0 then
  redis.call('SET', KEYS[8], 'topup|' .. int(amount) .. '|1|' .. available .. '|' .. ARGV[3], 'PX', idem_ttl)
end
return { int(amount), available, ARGV[3] }
`,
  { lazy: true },
);

const STATE_REPLY = `{ int(S.available), int(S.reserved), int(S.leased), int(S.consumed), int(S.supplied), int(S.version) }`;

/**
 * setAvailable. ARGV[2] the new available (0 to 2^53 - 1). `supplied` moves by the difference,
 * holds and leases stay as they are.
 * Reply: { available, reserved, leased, consumed, supplied, version }.
 */
export const setAvailableScript = quotaScript(
  'quota.setAvailable',
  [],
  `
local n = num(ARGV[2], 0, MAX)
if not n then return invalid('available must be an integer from 0 to 2^53 - 1') end
begin()
local supplied = S.supplied - S.available + n
if supplied > MAX then
  return invalid('setAvailable would take the total supplied past 2^53 - 1')
end
S.supplied = supplied
S.available = n
save()
return ${STATE_REPLY}
`,
  { lazy: true },
);

/** getState. Reply: { available, reserved, leased, consumed, supplied, version }. */
export const getStateScript = quotaScript('quota.getState', [], `begin() return ${STATE_REPLY}`, { lazy: true });
