import { InvalidArgumentError, LUA_HELPERS, defineScript, type Script } from '@x/redis-core';
import { InvalidLeaseError, LeaseAlreadyAcknowledgedError } from './errors';

/**
 * The keys of one queue, in the order every script takes them. All of them live in one hash tag.
 *
 * - `avail`   ZSET  key -> position. Never-leased and released-to-back items score 1, 2, 3, ...
 *                   (`meta.tail`); released-to-front items -1, -2, ... (`meta.head`); items whose
 *                   lease expired score `expiresAt - 2^51`, so they go ahead of everything else,
 *                   the earliest expired first, whenever the lazy reclaim happens to find them.
 * - `vals`    HASH  key -> encoded value (available and in-flight keys; `update` changes it).
 * - `next`    HASH  key -> the value that becomes available when the lease ends (update/buffer).
 * - `leases`  HASH  key -> "<token> <fence> <expiresAt ms | ->", plus " n" when `next` holds a value.
 * - `exp`     ZSET  key -> expiresAt, for leases that expire (leases without a timeout stay out).
 * - `meta`    HASH  tail, head, fence (counters).
 * - `waiters` ZSET  blocked getter id -> registration deadline (a wake pops the earliest).
 * - `takers`  ZSET  key -> deadline of the latest blocked `take` registration for it.
 * - `acked`   ZSET  token -> fence: the latest acks, to tell a second ack from an unknown lease.
 */
export const QUEUE_KEYS = ['avail', 'vals', 'next', 'leases', 'exp', 'meta', 'waiters', 'takers', 'acked'] as const;

/** Longest a blocked wait goes without re-checking (a safety net for a lost wake-up message). */
export const MAX_RECHECK_MS = 5_000;

// Shared by every script. ARGV[1] is always the wake-up channel. Every script first moves the
// expired leases (server time) back to the front, then does its work, then wakes as many blocked
// getters as it made items available (each one re-attempts; the attempt itself takes atomically,
// so a wake-up is only a hint and a lost or surplus one costs a retry, never an item).
const PRELUDE = `${LUA_HELPERS}
local K_AVAIL, K_VALS, K_NEXT, K_LEASES, K_EXP, K_META, K_WAITERS, K_TAKERS, K_ACKED =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local CHANNEL = ARGV[1]
-- One TIME per script: every call into Redis costs, and a script is atomic anyway.
local T = redis.call('TIME')
local NOW_US = tonumber(T[1]) * 1000000 + tonumber(T[2])
local NOW = math.floor(NOW_US / 1000)
local EXPIRED_BASE = 2251799813685248
local RECLAIM_BATCH = 1000
local MAX_RECHECK_MS = ${MAX_RECHECK_MS}
local GRACE_MS = 2000
local freed = 0

-- Whether any getter or taker is registered (asked once per script: most calls find nobody).
local watched
local function someone_waits()
  if watched == nil then watched = redis.call('EXISTS', K_WAITERS, K_TAKERS) > 0 end
  return watched
end

local function made_available(key)
  freed = freed + 1
  if not someone_waits() then return end
  local d = redis.call('ZSCORE', K_TAKERS, key)
  if d then
    redis.call('ZREM', K_TAKERS, key)
    if tonumber(d) >= NOW then wake(CHANNEL, 't' .. redis.sha1hex(key) .. ' 1') end
  end
end

-- A lease ends: the value put while it was in flight (update or buffer) becomes the item's value.
local function take_next_value(key)
  local nv = redis.call('HGET', K_NEXT, key)
  if nv then
    redis.call('HSET', K_VALS, key, nv)
    redis.call('HDEL', K_NEXT, key)
  end
  return nv
end

-- The item of an expired lease goes back ahead of everything, ordered by its expiry.
local function requeue_expired(key, at)
  take_next_value(key)
  redis.call('ZADD', K_AVAIL, int(at - EXPIRED_BASE), key)
  made_available(key)
end

local function expire(key, at)
  redis.call('ZREM', K_EXP, key)
  redis.call('HDEL', K_LEASES, key)
  requeue_expired(key, at)
end

local function reclaim()
  local due = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, RECLAIM_BATCH)
  if #due == 0 then return end
  local keys = {}
  for i = 1, #due, 2 do keys[#keys + 1] = due[i] end
  redis.call('ZREM', K_EXP, unpack(keys))
  redis.call('HDEL', K_LEASES, unpack(keys))
  for i = 1, #due, 2 do requeue_expired(due[i], tonumber(due[i + 1])) end
end

-- The current lease of key, or nil; one that expired but was left by a bounded reclaim expires now.
-- A record is "<token> <fence> <expiresAt | ->", plus " n" once a next value waits in K_NEXT.
local function live_lease(key)
  local rec = redis.call('HGET', K_LEASES, key)
  if not rec then return nil end
  local token, fence, exp, n = string.match(rec, '^(%S+) (%S+) (%S+) ?(%S*)$')
  if exp ~= '-' and tonumber(exp) <= NOW then
    expire(key, tonumber(exp))
    return nil
  end
  return { rec = rec, token = token, fence = fence, exp = exp, next = n == 'n' }
end

-- Ends lease l of key (not the item): the value put meanwhile, if any, becomes the item's value.
local function end_lease(key, l)
  redis.call('HDEL', K_LEASES, key)
  if l.exp ~= '-' then redis.call('ZREM', K_EXP, key) end
  if l.next then return take_next_value(key) end
  return nil
end

-- One wake-up per item made available, to the live waiters registered first. A waiter woken for
-- an item somebody else took re-registers; a surplus wake-up costs one attempt.
local function wake_getters()
  if freed == 0 or not someone_waits() then return end
  local ws = redis.call('ZRANGEBYSCORE', K_WAITERS, NOW, '+inf', 'LIMIT', 0, freed)
  if #ws == 0 then return end
  redis.call('ZREM', K_WAITERS, unpack(ws))
  for _, w in ipairs(ws) do wake(CHANNEL, w .. ' 1') end
end

local function finish(reply)
  wake_getters()
  return reply
end

local function held(key, token, fence)
  local l = live_lease(key)
  if l and l.token == token and l.fence == fence then return l end
  return nil
end

local function refuse(token)
  if redis.call('ZSCORE', K_ACKED, token) then
    return redis.error_reply('LEASE_ALREADY_ACKNOWLEDGED lease ' .. token .. ' was acknowledged already')
  end
  return redis.error_reply('INVALID_LEASE lease ' .. token .. ' is not the current lease of its key (unknown, released or expired)')
end

-- Appends key unless it is available already (then its position is kept): 1 if appended.
local function append(key)
  return redis.call('ZADD', K_AVAIL, 'NX', redis.call('HINCRBY', K_META, 'tail', 1), key)
end

local function prepend(key)
  redis.call('ZADD', K_AVAIL, -redis.call('HINCRBY', K_META, 'head', 1), key)
end

-- Fences never go backwards, even if the queue's keys were lost: max(last + 1, now in us).
local function new_fence()
  local f = math.max(tonumber(redis.call('HGET', K_META, 'fence') or '0') + 1, NOW_US)
  f = int(f)
  redis.call('HSET', K_META, 'fence', f)
  return f
end

-- Leases key (just taken out of the available set) to token: reply {key, value, fence, expiresAt | '-'}.
local function grant(key, token, lease_ms)
  local fence = new_fence()
  local exp = '-'
  if lease_ms ~= '' then
    local at = NOW + tonumber(lease_ms)
    exp = int(at)
    redis.call('ZADD', K_EXP, exp, key)
  end
  redis.call('HSET', K_LEASES, key, token .. ' ' .. fence .. ' ' .. exp)
  return { key, redis.call('HGET', K_VALS, key), fence, exp }
end

local function retry_in(at)
  if not at then return MAX_RECHECK_MS end
  return math.max(1, math.min(MAX_RECHECK_MS, tonumber(at) - NOW + 1))
end

reclaim()
`;

const errors = {
  INVALID_ARGUMENT: (detail: string) => new InvalidArgumentError(detail),
  INVALID_LEASE: (detail: string) => new InvalidLeaseError(detail),
  LEASE_ALREADY_ACKNOWLEDGED: (detail: string) => new LeaseAlreadyAcknowledgedError(detail),
};

function queueScript(name: string, body: string): Script {
  return defineScript({ name: `leasedkeyq.${name}`, keys: QUEUE_KEYS, source: PRELUDE + body, errors });
}

/**
 * put. ARGV: channel, key, value, mode ('update' | 'reject' | 'buffer').
 * Reply: 'added' | 'replaced' | 'updated' | 'buffered' | 'rejected' (nothing changed).
 */
export const putScript = queueScript(
  'put',
  `
local key, value, mode = ARGV[2], ARGV[3], ARGV[4]
if mode ~= 'update' and mode ~= 'reject' and mode ~= 'buffer' then
  return finish(redis.error_reply('INVALID_ARGUMENT ifInFlight must be update, reject or buffer'))
end
local l = live_lease(key)
if l then
  if mode == 'reject' then return finish('rejected') end
  redis.call('HSET', K_NEXT, key, value)
  if not l.next then redis.call('HSET', K_LEASES, key, l.rec .. ' n') end
  if mode == 'buffer' then return finish('buffered') end
  redis.call('HSET', K_VALS, key, value)
  return finish('updated')
end
redis.call('HSET', K_VALS, key, value)
if append(key) == 0 then return finish('replaced') end
made_available(key)
return finish('added')
`,
);

/**
 * One attempt of get: leases the front item, or registers the caller as a blocked getter.
 * ARGV: channel, token, leaseMs ('' = no expiry), waiter id ('' = do not register), resend ('1'
 * when an earlier attempt of this token may have run but its reply was lost).
 * Reply: {key, value, fence, expiresAt | '-'}, or {retryInMs} when the queue is empty.
 */
export const getScript = queueScript(
  'get',
  `
local token, lease_ms, waiter = ARGV[2], ARGV[3], ARGV[4]
if lease_ms ~= '' and not string.match(lease_ms, '^[1-9]%d*$') then
  return finish(redis.error_reply('INVALID_ARGUMENT leaseTimeoutMs must be a positive integer'))
end
-- A resend after a lost reply returns the lease that attempt granted, rather than a second item.
-- It walks the leases in flight, which only a resend after a fault pays for.
if ARGV[5] == '1' then
  local recs = redis.call('HGETALL', K_LEASES)
  for i = 1, #recs, 2 do
    if string.match(recs[i + 1], '^(%S+) ') == token then
      local l = live_lease(recs[i])
      if l and l.token == token then return finish({ recs[i], redis.call('HGET', K_VALS, recs[i]), l.fence, l.exp }) end
    end
  end
end
local front = redis.call('ZPOPMIN', K_AVAIL)
if front[1] then
  if waiter ~= '' then redis.call('ZREM', K_WAITERS, waiter) end
  return finish(grant(front[1], token, lease_ms))
end
local first = redis.call('ZRANGE', K_EXP, 0, 0, 'WITHSCORES')
local retry = retry_in(first[2])
if waiter ~= '' then
  redis.call('ZREMRANGEBYSCORE', K_WAITERS, '-inf', '(' .. int(NOW))
  redis.call('ZADD', K_WAITERS, int(NOW + retry + GRACE_MS), waiter)
end
return finish({ retry })
`,
);

/**
 * One attempt of take: leases key if it is available, or registers a blocked taker of key.
 * ARGV: channel, token, leaseMs ('' = no expiry), register ('1' | '0'), key.
 * Reply: {key, value, fence, expiresAt | '-'}, or {retryInMs} while key is absent or in flight.
 */
export const takeScript = queueScript(
  'take',
  `
local token, lease_ms, register, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if lease_ms ~= '' and not string.match(lease_ms, '^[1-9]%d*$') then
  return finish(redis.error_reply('INVALID_ARGUMENT leaseTimeoutMs must be a positive integer'))
end
if redis.call('ZREM', K_AVAIL, key) == 1 then return finish(grant(key, token, lease_ms)) end
local l = live_lease(key)
-- Leased to this very token: an earlier attempt ran and its reply was lost.
if l and l.token == token then return finish({ key, redis.call('HGET', K_VALS, key), l.fence, l.exp }) end
if not l and redis.call('ZREM', K_AVAIL, key) == 1 then return finish(grant(key, token, lease_ms)) end
local retry = retry_in(l and l.exp ~= '-' and l.exp or nil)
if register == '1' then
  redis.call('ZREMRANGEBYSCORE', K_TAKERS, '-inf', '(' .. int(NOW))
  redis.call('ZADD', K_TAKERS, 'GT', int(NOW + retry + GRACE_MS), key)
end
return finish({ retry })
`,
);

/**
 * A blocked getter gives up: it leaves the waiters, and a wake-up it may have been sent is
 * passed on to the next one. ARGV: channel, waiter id. Reply: 1.
 */
export const leaveScript = queueScript(
  'leave',
  `
if redis.call('ZREM', K_WAITERS, ARGV[2]) == 0 and redis.call('ZCARD', K_AVAIL) > 0 then freed = freed + 1 end
return finish(1)
`,
);

/**
 * ack. ARGV: channel, key, token, fence, acked history size.
 * Reply: 1 when a value put while in flight became a new item at the back, else 0.
 */
export const ackScript = queueScript(
  'ack',
  `
local key, token, fence, cap = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local l = held(key, token, fence)
if not l then return finish(refuse(token)) end
local requeued = 0
if end_lease(key, l) then
  append(key)
  made_available(key)
  requeued = 1
else
  redis.call('HDEL', K_VALS, key)
end
-- Ranked by fence (leases are granted in fence order): the latest cap acks are kept.
redis.call('ZADD', K_ACKED, fence, token)
redis.call('ZREMRANGEBYRANK', K_ACKED, 0, -(cap + 1))
return finish(requeued)
`,
);

/** release. ARGV: channel, key, token, fence, front ('1' | '0'). Reply: 1. */
export const releaseScript = queueScript(
  'release',
  `
local key, token, fence = ARGV[2], ARGV[3], ARGV[4]
local l = held(key, token, fence)
if not l then return finish(refuse(token)) end
end_lease(key, l)
if ARGV[5] == '1' then prepend(key) else append(key) end
made_available(key)
return finish(1)
`,
);

/** extend. ARGV: channel, key, token, fence, ms. Reply: the new expiresAt (epoch ms, string). */
export const extendScript = queueScript(
  'extend',
  `
local key, token, fence = ARGV[2], ARGV[3], ARGV[4]
if not string.match(ARGV[5], '^[1-9]%d*$') then
  return finish(redis.error_reply('INVALID_ARGUMENT leaseTimeoutMs must be a positive integer'))
end
local l = held(key, token, fence)
if not l then return finish(refuse(token)) end
local at = int(NOW + tonumber(ARGV[5]))
redis.call('ZADD', K_EXP, at, key)
redis.call('HSET', K_LEASES, key, token .. ' ' .. fence .. ' ' .. at .. (l.next and ' n' or ''))
return finish(at)
`,
);

/**
 * close: returns leases to the front, the earliest leased (lowest fence) first in line.
 * ARGV: channel, then key, token, fence for each lease, in ascending fence order.
 * Reply: the number of leases returned (the others had ended already).
 */
export const returnAllScript = queueScript(
  'return-all',
  `
local n = 0
for i = #ARGV - 2, 2, -3 do
  local key, token, fence = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local l = held(key, token, fence)
  if l then
    end_lease(key, l)
    prepend(key)
    made_available(key)
    n = n + 1
  end
end
return finish(n)
`,
);

/** peek. ARGV: channel, key. Reply: the value of key if it is available, else -1. */
export const peekScript = queueScript(
  'peek',
  `
if not redis.call('ZSCORE', K_AVAIL, ARGV[2]) then return finish(-1) end
return finish(redis.call('HGET', K_VALS, ARGV[2]))
`,
);

/** contains. ARGV: channel, key. Reply: 1 if key is available, else 0. */
export const containsScript = queueScript(
  'contains',
  `
if redis.call('ZSCORE', K_AVAIL, ARGV[2]) then return finish(1) end
return finish(0)
`,
);

/** availableKeys. ARGV: channel. Reply: the available keys, front first. */
export const availableKeysScript = queueScript('available-keys', `return finish(redis.call('ZRANGE', K_AVAIL, 0, -1))`);

/** inflightKeys. ARGV: channel. Reply: flat key, lease record pairs. */
export const inflightKeysScript = queueScript('inflight-keys', `return finish(redis.call('HGETALL', K_LEASES))`);

/** sizes. ARGV: channel. Reply: {available count, in-flight count}. */
export const sizesScript = queueScript(
  'sizes',
  `return finish({ redis.call('ZCARD', K_AVAIL), redis.call('HLEN', K_LEASES) })`,
);
