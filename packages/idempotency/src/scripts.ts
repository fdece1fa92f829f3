import { InvalidArgumentError, LUA_HELPERS, defineScript } from '@x/redis-core';
import { IdempotencyFingerprintMismatchError, IdempotencyLeaseLostError } from './errors';

// One record per key, a hash: state (in_progress | completed | failed), token (of the claim that
// wrote it; '' after `set`), fp (request fingerprint, '' when none), value (encoded result or
// error), until (lease end, server epoch ms, while in_progress).
//
// Wake-ups on the key's channel, to every waiter ('*'):
//   'c <fp|-> [value]'  completed (value inlined up to INLINE_WAKE_BYTES, else re-read)
//   'f <fp|-> [value]'  failed and cached
//   'r'                 freed for a retry: waiters try to claim it

/** Values up to this size ride in the wake-up itself, so a woken waiter needs no round trip. */
export const INLINE_WAKE_BYTES = 65_536;

const errors = {
  IDEMPOTENCY_FINGERPRINT_MISMATCH: (detail: string) => new IdempotencyFingerprintMismatchError(detail),
  IDEMPOTENCY_LEASE_LOST: (detail: string) => new IdempotencyLeaseLostError(detail),
  INVALID_ARGUMENT: (detail: string) => new InvalidArgumentError(detail),
};

const CHECKS = `
local function posint(s)
  local n = tonumber(s)
  if n == nil or n < 1 or n ~= math.floor(n) then return nil end
  return n
end
local function bad(what) return redis.error_reply('INVALID_ARGUMENT ' .. what) end
local function wake_value(channel, kind, fp, value)
  if fp == nil or fp == false or fp == '' then fp = '-' end
  if #value <= ${INLINE_WAKE_BYTES} then wake(channel, '* ' .. kind .. ' ' .. fp .. ' ' .. value)
  else wake(channel, '* ' .. kind .. ' ' .. fp) end
end
`;

/**
 * Claims the key, or reports what is there: one round trip to claim or replay.
 * KEYS: record. ARGV: token, fingerprint ('' for none), leaseMs, ttlMs.
 * Reply: {'acquired', expiresAt} | {'completed', value} | {'failed', value} | {'in_progress', retryAfterMs}.
 * A claim whose lease ran out counts as absent: the key is claimable again.
 */
export const beginScript = defineScript({
  name: 'idempotency.begin',
  keys: ['record'],
  errors,
  // The replay of a settled record comes first, before the helpers are even defined: it is the
  // hot path (a retry), it writes nothing, and every check it needs is the fingerprint's.
  source: `
local rec = redis.call('HMGET', KEYS[1], 'state', 'fp', 'value', 'until')
local state, fp = rec[1], ARGV[2]
if state == 'completed' or state == 'failed' then
  if fp ~= '' and rec[2] and rec[2] ~= '' and rec[2] ~= fp then
    return redis.error_reply('IDEMPOTENCY_FINGERPRINT_MISMATCH ' .. KEYS[1] .. ' was first used with a different request')
  end
  return {state, rec[3] or ''}
end
` + LUA_HELPERS + CHECKS + `
local token = ARGV[1]
local lease, ttl = posint(ARGV[3]), posint(ARGV[4])
if lease == nil or ttl == nil then return bad('leaseMs and ttlMs must be positive integers') end
if #token == 0 or #token > 64 then return bad('token must be 1 to 64 bytes') end
if fp ~= '' and not string.match(fp, '^%x+$') then return bad('fingerprint must be hex') end
local now = now_ms()
if state then
  -- A running claim, unless its lease ran out: then the key is claimable again.
  local expires = tonumber(rec[4]) or 0
  if expires > now then
    if fp ~= '' and rec[2] and rec[2] ~= '' and rec[2] ~= fp then
      return redis.error_reply('IDEMPOTENCY_FINGERPRINT_MISMATCH ' .. KEYS[1] .. ' was first used with a different request')
    end
    return {'in_progress', int(expires - now)}
  end
end
local expires = now + lease
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'token', token, 'fp', fp, 'until', int(expires))
redis.call('PEXPIRE', KEYS[1], math.max(lease, ttl))
return {'acquired', int(expires)}
`,
});

/**
 * Renews a running claim's lease.
 * KEYS: record. ARGV: token, leaseMs. Reply: the new lease end (epoch ms), or -1 if the claim is gone.
 */
export const renewScript = defineScript({
  name: 'idempotency.renew',
  keys: ['record'],
  errors,
  source: LUA_HELPERS + CHECKS + `
local lease = posint(ARGV[2])
if lease == nil then return bad('leaseMs must be a positive integer') end
local rec = redis.call('HMGET', KEYS[1], 'state', 'token')
if rec[1] ~= 'in_progress' or rec[2] ~= ARGV[1] then return -1 end
local expires = now_ms() + lease
redis.call('HSET', KEYS[1], 'until', int(expires))
keep_for(KEYS[1], lease)
return expires
`,
});

/**
 * Stores the result of the claim `token` and wakes the waiters. Safe to resend: a second
 * complete by the same claim is a no-op.
 * KEYS: record. ARGV: token, value, ttlMs, channel, maxValueBytes.
 * Reply: 1 stored, 0 already stored by this claim. IDEMPOTENCY_LEASE_LOST when the claim is not the key's.
 */
export const completeScript = defineScript({
  name: 'idempotency.complete',
  keys: ['record'],
  errors,
  source: LUA_HELPERS + CHECKS + `
local token, value = ARGV[1], ARGV[2]
local ttl, max = posint(ARGV[3]), posint(ARGV[5])
if ttl == nil or max == nil then return bad('ttlMs and maxValueBytes must be positive integers') end
if #token == 0 then return bad('token must not be empty') end
if #value > max then return bad('value is ' .. #value .. ' bytes, more than maxValueBytes ' .. max) end
local rec = redis.call('HMGET', KEYS[1], 'state', 'token', 'fp')
if rec[2] ~= token then
  return redis.error_reply('IDEMPOTENCY_LEASE_LOST ' .. KEYS[1] .. ' is no longer claimed by this token')
end
if rec[1] == 'completed' then return 0 end
if rec[1] ~= 'in_progress' then
  return redis.error_reply('IDEMPOTENCY_LEASE_LOST ' .. KEYS[1] .. ' was already settled by this claim')
end
redis.call('HSET', KEYS[1], 'state', 'completed', 'value', value)
redis.call('HDEL', KEYS[1], 'until')
redis.call('PEXPIRE', KEYS[1], ttl)
wake_value(ARGV[4], 'c', rec[3], value)
return 1
`,
});

/**
 * Settles the claim `token` as failed: 'free' deletes the record (the key can be claimed again),
 * 'cache' stores the error for replay. Wakes the waiters either way. Safe to resend.
 * KEYS: record. ARGV: token, mode ('free' | 'cache'), value, ttlMs, channel, maxValueBytes.
 * Reply: 1 settled, 0 already settled so. IDEMPOTENCY_LEASE_LOST when the claim is not the key's.
 */
export const failScript = defineScript({
  name: 'idempotency.fail',
  keys: ['record'],
  errors,
  source: LUA_HELPERS + CHECKS + `
local token, mode, value = ARGV[1], ARGV[2], ARGV[3]
local ttl, max = posint(ARGV[4]), posint(ARGV[6])
if ttl == nil or max == nil then return bad('ttlMs and maxValueBytes must be positive integers') end
if #token == 0 then return bad('token must not be empty') end
if mode ~= 'free' and mode ~= 'cache' then return bad('mode must be free or cache') end
if #value > max then return bad('error is ' .. #value .. ' bytes, more than maxValueBytes ' .. max) end
local rec = redis.call('HMGET', KEYS[1], 'state', 'token', 'fp')
if not rec[1] then
  -- Nobody holds the key: freeing it is already done; caching needs a claim.
  if mode == 'free' then return 0 end
  return redis.error_reply('IDEMPOTENCY_LEASE_LOST ' .. KEYS[1] .. ' is no longer claimed by this token')
end
if rec[2] ~= token then
  return redis.error_reply('IDEMPOTENCY_LEASE_LOST ' .. KEYS[1] .. ' is no longer claimed by this token')
end
if rec[1] ~= 'in_progress' then
  if rec[1] == 'failed' and mode == 'cache' then return 0 end
  return redis.error_reply('IDEMPOTENCY_LEASE_LOST ' .. KEYS[1] .. ' was already settled by this claim')
end
if mode == 'free' then
  redis.call('DEL', KEYS[1])
  wake(ARGV[5], '* r')
  return 1
end
redis.call('HSET', KEYS[1], 'state', 'failed', 'value', value)
redis.call('HDEL', KEYS[1], 'until')
redis.call('PEXPIRE', KEYS[1], ttl)
wake_value(ARGV[5], 'f', rec[3], value)
return 1
`,
});

/**
 * Writes a completed record whatever is there (qx-cache's `set`), and wakes the waiters.
 * KEYS: record. ARGV: value, fingerprint, ttlMs, channel, maxValueBytes. Reply: 1.
 */
export const setScript = defineScript({
  name: 'idempotency.set',
  keys: ['record'],
  errors,
  source: LUA_HELPERS + CHECKS + `
local value, fp = ARGV[1], ARGV[2]
local ttl, max = posint(ARGV[3]), posint(ARGV[5])
if ttl == nil or max == nil then return bad('ttlMs and maxValueBytes must be positive integers') end
if #value > max then return bad('value is ' .. #value .. ' bytes, more than maxValueBytes ' .. max) end
if fp ~= '' and not string.match(fp, '^%x+$') then return bad('fingerprint must be hex') end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'completed', 'token', '', 'fp', fp, 'value', value)
redis.call('PEXPIRE', KEYS[1], ttl)
wake_value(ARGV[4], 'c', fp, value)
return 1
`,
});

/**
 * Reads a completed result. KEYS: record. Reply: the stored value, or nil when nothing completed
 * is stored (absent, running, or a cached error).
 */
export const getScript = defineScript({
  name: 'idempotency.get',
  keys: ['record'],
  errors,
  source: `
local rec = redis.call('HMGET', KEYS[1], 'state', 'value')
if rec[1] == 'completed' then return rec[2] end
return false
`,
});

/**
 * Reports what a key holds, writing nothing.
 * KEYS: record. Reply: {'absent'} | {'running', retryAfterMs} | {'completed' | 'failed', value, pttl}.
 * A running claim whose lease ran out reads as absent (the next `begin` claims it).
 */
export const inspectScript = defineScript({
  name: 'idempotency.inspect',
  keys: ['record'],
  errors,
  source: LUA_HELPERS + `
local rec = redis.call('HMGET', KEYS[1], 'state', 'value', 'until')
local state = rec[1]
if state == 'completed' or state == 'failed' then
  return {state, rec[2] or '', redis.call('PTTL', KEYS[1])}
end
if state == 'in_progress' then
  local left = (tonumber(rec[3]) or 0) - now_ms()
  if left > 0 then return {'running', int(left)} end
end
return {'absent'}
`,
});
