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
 * - `dlv`     HASH  key -> how many times the item was leased (kept across expiry and release,
 *                   dropped when the item leaves the queue).
 * - `errs`    HASH  key -> the last error an item was released with.
 * - `delayed` ZSET  key -> when a delayed release makes the item available (server epoch ms).
 * - `dfront`  HASH  key -> 1 for a delayed item that joins the front, not the back, when due.
 * - `dead`    ZSET  key -> order of dead-lettering (`meta.dead`), oldest first.
 * - `deadrec` HASH  key -> the dead letter, JSON: {value, deliveries, error?, at}.
 */
export const QUEUE_KEYS = [
  'avail',
  'vals',
  'next',
  'leases',
  'exp',
  'meta',
  'waiters',
  'takers',
  'acked',
  'dlv',
  'errs',
  'delayed',
  'dfront',
  'dead',
  'deadrec',
] as const;

/** Most items a get moves to the dead letters before it answers "try again at once". */
export const DEAD_LETTER_BATCH = 100;

/** Longest a blocked wait goes without re-checking (a safety net for a lost wake-up message). */
export const MAX_RECHECK_MS = 5_000;

// Shared by every script. ARGV[1] is always the wake-up channel. Every script first moves the
// expired leases (server time) back to the front, then does its work, then wakes as many blocked
// getters as it made items available (each one re-attempts; the attempt itself takes atomically,
// so a wake-up is only a hint and a lost or surplus one costs a retry, never an item).
const PRELUDE = `${LUA_HELPERS}
local K_AVAIL, K_VALS, K_NEXT, K_LEASES, K_EXP, K_META, K_WAITERS, K_TAKERS, K_ACKED =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local K_DLV, K_ERRS, K_DELAYED, K_DFRONT, K_DEAD, K_DEADREC = KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15]
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

-- Leases key (just taken out of the available set) to token: reply
-- {key, value, fence, expiresAt | '-', deliveries}. The delivery count grows in the same script.
local function grant(key, token, lease_ms)
  local fence = new_fence()
  local deliveries = redis.call('HINCRBY', K_DLV, key, 1)
  local exp = '-'
  if lease_ms ~= '' then
    local at = NOW + tonumber(lease_ms)
    exp = int(at)
    redis.call('ZADD', K_EXP, exp, key)
  end
  redis.call('HSET', K_LEASES, key, token .. ' ' .. fence .. ' ' .. exp)
  return { key, redis.call('HGET', K_VALS, key), fence, exp, deliveries }
end

local function deliveries_of(key)
  return tonumber(redis.call('HGET', K_DLV, key) or '0')
end

-- A lease ended without making an item available: a getter held back by maxInFlight may go on.
local function slot_freed()
  if someone_waits() and redis.call('ZCARD', K_AVAIL) > 0 then freed = freed + 1 end
end

-- The item leaves the queue (it is neither available nor in flight) for the dead letters, with
-- its value, delivery count and last error. A key dead-lettered again replaces its older letter.
local function dead_letter(key, err)
  if err == nil or err == '' then err = redis.call('HGET', K_ERRS, key) or nil end
  local rec = { value = redis.call('HGET', K_VALS, key), deliveries = deliveries_of(key), error = err, at = NOW }
  redis.call('HSET', K_DEADREC, key, cjson.encode(rec))
  redis.call('ZADD', K_DEAD, redis.call('HINCRBY', K_META, 'dead', 1), key)
  redis.call('HDEL', K_VALS, key)
  redis.call('HDEL', K_DLV, key)
  redis.call('HDEL', K_ERRS, key)
  slot_freed()
end

-- Delayed releases that are due join the queue, the earliest due first. Every script runs this
-- before its work, so an item due before a put is ahead of it, whenever the queue notices.
local function promote()
  local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW, 'LIMIT', 0, RECLAIM_BATCH)
  if #due == 0 then return end
  redis.call('ZREM', K_DELAYED, unpack(due))
  for _, key in ipairs(due) do
    if redis.call('HDEL', K_DFRONT, key) == 1 then prepend(key) else append(key) end
    made_available(key)
  end
end

-- The earliest of two optional times (strings or numbers), or nil.
local function earliest(a, b)
  if not a then return b end
  if not b then return a end
  return math.min(tonumber(a), tonumber(b))
end

local function retry_in(at)
  if not at then return MAX_RECHECK_MS end
  return math.max(1, math.min(MAX_RECHECK_MS, tonumber(at) - NOW + 1))
end

reclaim()
promote()
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
-- A delayed item is replaced and stays delayed.
if redis.call('ZSCORE', K_DELAYED, key) or append(key) == 0 then return finish('replaced') end
made_available(key)
return finish('added')
`,
);

// Shared by get, ack and ack-get.
const LEASE_AND_ACK = `
-- Leases the front item to token, moving items leased max_dlv times to the dead letters on the
-- way (at most a batch): the grant, or nil and when to attempt again (0: at once, more items
-- wait behind dead letters). A waiter id registers a blocked getter when nothing can be leased.
local function lease_front(token, lease_ms, waiter, max_dlv, max_if)
  if max_if == '' or redis.call('HLEN', K_LEASES) < tonumber(max_if) then
    for _ = 1, ${DEAD_LETTER_BATCH} do
      local front = redis.call('ZPOPMIN', K_AVAIL)
      if not front[1] then break end
      if deliveries_of(front[1]) < max_dlv then
        if waiter ~= '' then redis.call('ZREM', K_WAITERS, waiter) end
        return grant(front[1], token, lease_ms), nil
      end
      dead_letter(front[1], nil)
    end
    if redis.call('ZCARD', K_AVAIL) > 0 then return nil, 0 end
  end
  local first = redis.call('ZRANGE', K_EXP, 0, 0, 'WITHSCORES')
  local due = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
  local retry = retry_in(earliest(first[2], due[2]))
  if waiter ~= '' then
    redis.call('ZREMRANGEBYSCORE', K_WAITERS, '-inf', '(' .. int(NOW))
    redis.call('ZADD', K_WAITERS, int(NOW + retry + GRACE_MS), waiter)
  end
  return nil, retry
end

-- Acks lease token/fence of key: 1 when a value put while in flight became a new item at the
-- back, 0 when the item left the queue, or the error reply refusing the lease.
local function ack_lease(key, token, fence, cap)
  local l = held(key, token, fence)
  if not l then return refuse(token) end
  local requeued = 0
  -- The item is done: a value put meanwhile is a new item, with no deliveries yet.
  redis.call('HDEL', K_DLV, key)
  redis.call('HDEL', K_ERRS, key)
  if end_lease(key, l) then
    append(key)
    made_available(key)
    requeued = 1
  else
    redis.call('HDEL', K_VALS, key)
    slot_freed()
  end
  -- Ranked by fence (leases are granted in fence order): the latest cap acks are kept.
  redis.call('ZADD', K_ACKED, fence, token)
  redis.call('ZREMRANGEBYRANK', K_ACKED, 0, -(cap + 1))
  return requeued
end

local function bad_lease_args(lease_ms, max_dlv, max_if)
  if lease_ms ~= '' and not string.match(lease_ms, '^[1-9]%d*$') then
    return redis.error_reply('INVALID_ARGUMENT leaseTimeoutMs must be a positive integer')
  end
  if not string.match(max_dlv, '^[1-9]%d*$') or (max_if ~= '' and not string.match(max_if, '^[1-9]%d*$')) then
    return redis.error_reply('INVALID_ARGUMENT maxDeliveries and maxInFlight must be positive integers')
  end
  return nil
end
`;

/**
 * One attempt of get: leases the front item, or registers the caller as a blocked getter. An item
 * leased maxDeliveries times already goes to the dead letters instead (at most
 * DEAD_LETTER_BATCH per call); with maxInFlight, nothing is leased while that many leases live.
 * ARGV: channel, token, leaseMs ('' = no expiry), waiter id ('' = do not register),
 * maxDeliveries, maxInFlight ('' = no limit), resend ('1' when an earlier attempt of this token
 * may have run but its reply was lost).
 * Reply: {key, value, fence, expiresAt | '-', deliveries}, or {retryInMs} when nothing can be
 * leased now ({0}: dead letters were moved, attempt again at once).
 */
export const getScript = queueScript(
  'get',
  `${LEASE_AND_ACK}
local token, lease_ms, waiter, max_dlv, max_if = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local bad = bad_lease_args(lease_ms, max_dlv, max_if)
if bad then return finish(bad) end
-- A resend after a lost reply returns the lease that attempt granted, rather than a second item.
-- It walks the leases in flight, which only a resend after a fault pays for.
if ARGV[7] == '1' then
  local recs = redis.call('HGETALL', K_LEASES)
  for i = 1, #recs, 2 do
    if string.match(recs[i + 1], '^(%S+) ') == token then
      local l = live_lease(recs[i])
      if l and l.token == token then
        return finish({ recs[i], redis.call('HGET', K_VALS, recs[i]), l.fence, l.exp, deliveries_of(recs[i]) })
      end
    end
  end
end
local got, retry = lease_front(token, lease_ms, waiter, tonumber(max_dlv), max_if)
if got then return finish(got) end
return finish({ retry })
`,
);

/**
 * A worker's ack of one item and lease of the next, in one round trip (what `ack` then `get`
 * with timeoutMs 0 do). Resent after it ran, the ack is refused and nothing more is leased.
 * ARGV: channel, key, token, fence, acked history size, then the next lease's token, leaseMs,
 * maxDeliveries, maxInFlight.
 * Reply: {requeued (1 | 0), key, value, fence, expiresAt | '-', deliveries}, or {requeued} when
 * nothing can be leased now.
 */
export const ackGetScript = queueScript(
  'ack-get',
  `${LEASE_AND_ACK}
local token, lease_ms, max_dlv, max_if = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local bad = bad_lease_args(lease_ms, max_dlv, max_if)
if bad then return finish(bad) end
local requeued = ack_lease(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]))
if type(requeued) == 'table' then return finish(requeued) end
local reply = { requeued }
-- A first round and, when it only moved dead letters, no more: the worker then waits as get does.
local got = lease_front(token, lease_ms, '', tonumber(max_dlv), max_if)
if got then
  for _, v in ipairs(got) do reply[#reply + 1] = v end
end
return finish(reply)
`,
);

/**
 * One attempt of take: leases key if it is available, or registers a blocked taker of key. An
 * item leased maxDeliveries times already goes to the dead letters instead (the key is then absent).
 * ARGV: channel, token, leaseMs ('' = no expiry), register ('1' | '0'), key, maxDeliveries.
 * Reply: {key, value, fence, expiresAt | '-', deliveries}, or {retryInMs} while key is absent,
 * delayed or in flight.
 */
export const takeScript = queueScript(
  'take',
  `
local token, lease_ms, register, key, max_dlv = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if lease_ms ~= '' and not string.match(lease_ms, '^[1-9]%d*$') then
  return finish(redis.error_reply('INVALID_ARGUMENT leaseTimeoutMs must be a positive integer'))
end
if not string.match(max_dlv, '^[1-9]%d*$') then
  return finish(redis.error_reply('INVALID_ARGUMENT maxDeliveries must be a positive integer'))
end
max_dlv = tonumber(max_dlv)
local function take_it()
  if deliveries_of(key) < max_dlv then return grant(key, token, lease_ms) end
  dead_letter(key, nil)
  return nil
end
local got
if redis.call('ZREM', K_AVAIL, key) == 1 then got = take_it() end
if got then return finish(got) end
local l = live_lease(key)
-- Leased to this very token: an earlier attempt ran and its reply was lost.
if l and l.token == token then return finish({ key, redis.call('HGET', K_VALS, key), l.fence, l.exp, deliveries_of(key) }) end
if not l and redis.call('ZREM', K_AVAIL, key) == 1 then got = take_it() end
if got then return finish(got) end
local retry = retry_in(l and l.exp ~= '-' and l.exp or redis.call('ZSCORE', K_DELAYED, key) or nil)
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
  `${LEASE_AND_ACK}
return finish(ack_lease(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])))
`,
);

/**
 * release. ARGV: channel, key, token, fence, front ('1' | '0'), delayMs ('0' = none), error
 * ('' = none), maxDeliveries. An item leased maxDeliveries times goes to the dead letters, since
 * it cannot be leased again; a delayed one becomes available (front or back) when due.
 * Reply: 'released' | 'delayed' | 'dead-lettered'.
 */
export const releaseScript = queueScript(
  'release',
  `
local key, token, fence, front, delay, err, max_dlv = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if not string.match(delay, '^%d+$') or not string.match(max_dlv, '^[1-9]%d*$') then
  return finish(redis.error_reply('INVALID_ARGUMENT delayMs and maxDeliveries must be integers'))
end
local l = held(key, token, fence)
if not l then return finish(refuse(token)) end
end_lease(key, l)
if err ~= '' then redis.call('HSET', K_ERRS, key, err) end
if deliveries_of(key) >= tonumber(max_dlv) then
  dead_letter(key, err)
  return finish('dead-lettered')
end
if delay ~= '0' then
  redis.call('ZADD', K_DELAYED, int(NOW + tonumber(delay)), key)
  if front == '1' then redis.call('HSET', K_DFRONT, key, 1) end
  slot_freed()
  return finish('delayed')
end
if front == '1' then prepend(key) else append(key) end
made_available(key)
return finish('released')
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

/** sizes. ARGV: channel. Reply: {available, in flight, delayed, dead letters}. */
export const sizesScript = queueScript(
  'sizes',
  `return finish({ redis.call('ZCARD', K_AVAIL), redis.call('HLEN', K_LEASES), redis.call('ZCARD', K_DELAYED), redis.call('ZCARD', K_DEAD) })`,
);

/**
 * deadLetters. ARGV: channel, offset, count.
 * Reply: flat key, record (JSON {value, deliveries, error?, at}) pairs, oldest dead-lettered first.
 */
export const deadLettersScript = queueScript(
  'dead-letters',
  `
local keys = redis.call('ZRANGE', K_DEAD, tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local out = {}
for _, key in ipairs(keys) do
  out[#out + 1] = key
  out[#out + 1] = redis.call('HGET', K_DEADREC, key)
end
return finish(out)
`,
);

/**
 * redrive: dead letters go back to the back of the queue, oldest first, with no deliveries.
 * A dead letter whose key is in the queue again (put since) stays where it is: the queue holds
 * a newer item of that key. Safe to resend: a letter redriven is gone from the dead letters.
 * ARGV: channel, offset ('' = the keys that follow), count, keys...
 * Reply: {redriven, skipped, scanned}.
 */
export const redriveScript = queueScript(
  'redrive',
  `
local keys
if ARGV[2] ~= '' then
  keys = redis.call('ZRANGE', K_DEAD, tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
else
  keys = {}
  for i = 4, #ARGV do keys[#keys + 1] = ARGV[i] end
end
local redriven, skipped = 0, 0
for _, key in ipairs(keys) do
  local rec = redis.call('HGET', K_DEADREC, key)
  if rec then
    if live_lease(key) or redis.call('ZSCORE', K_AVAIL, key) or redis.call('ZSCORE', K_DELAYED, key) then
      skipped = skipped + 1
    else
      redis.call('HSET', K_VALS, key, cjson.decode(rec).value)
      redis.call('ZREM', K_DEAD, key)
      redis.call('HDEL', K_DEADREC, key)
      append(key)
      made_available(key)
      redriven = redriven + 1
    end
  end
end
return finish({ redriven, skipped, #keys })
`,
);
