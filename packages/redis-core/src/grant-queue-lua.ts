import { LUA_HELPERS } from './lua';

/**
 * The Lua of a FIFO queue of leased grants (a lock is one with limit 1, a semaphore one with N
 * permits). Every script that includes it takes these KEYS, all in one hash tag:
 *
 *   KEYS[1] holders  ZSET  token -> lease expiry (server ms)
 *   KEYS[2] grants   HASH  token -> "permits|fence"
 *   KEYS[3] queue    LIST  waiting tokens, oldest first
 *   KEYS[4] waiters  HASH  token -> "deadline|permits|ttlMs" (the waiter's own lease)
 *   KEYS[5] meta     HASH  fence (last fence handed out), used (permits held); expires with holders
 *   KEYS[6] config   HASH  limit (read when the caller does not pass one)
 *
 * A grant handed to a waiter is published as "<token> g <fence> <expiresAt>" on the channel.
 */
export const GRANT_QUEUE_LUA =
  LUA_HELPERS +
  `
local H, G, Q, W, M, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local function gq_limit(arg)
  if arg ~= '' then return tonumber(arg) end
  local l = redis.call('HGET', C, 'limit')
  if l then return tonumber(l) end
  return nil
end

-- True once gq_reclaim found no holders key: nothing is held, whatever meta.used says (the
-- holders may have expired with their keys), so the next grant starts the count afresh.
local gq_fresh = false

local function gq_used()
  if gq_fresh then return 0 end
  return tonumber(redis.call('HGET', M, 'used') or '0')
end

-- Expired holders give their permits back. No holders key means nothing is held.
local function gq_reclaim(now)
  if redis.call('EXISTS', H) == 0 then
    gq_fresh = true
    return
  end
  local expired = redis.call('ZRANGEBYSCORE', H, '-inf', now)
  if #expired == 0 then return end
  local freed = 0
  for _, t in ipairs(expired) do
    local g = redis.call('HGET', G, t)
    if g then freed = freed + tonumber(string.match(g, '^(%d+)')) end
    redis.call('HDEL', G, t)
  end
  redis.call('ZREMRANGEBYSCORE', H, '-inf', now)
  redis.call('HINCRBY', M, 'used', -freed)
end

local function gq_grant(token, permits, ttl, now)
  local fence = next_fence(M, 'fence')
  local exp = now + ttl
  redis.call('ZADD', H, exp, token)
  redis.call('HSET', G, token, permits .. '|' .. int(fence))
  if gq_fresh then
    -- The first holder: the holders key is new, and grants left from expired keys are stale.
    gq_fresh = false
    redis.call('HSET', M, 'used', permits)
    redis.call('PEXPIRE', H, ttl)
    redis.call('PEXPIRE', G, ttl)
  else
    redis.call('HINCRBY', M, 'used', permits)
    keep_for(H, ttl)
    keep_for(G, ttl)
  end
  keep_for(M, ttl)
  return fence, exp
end

local function gq_waiter(token)
  local w = redis.call('HGET', W, token)
  if not w then return nil end
  local d, p, t = string.match(w, '^(%d+)|(%d+)|(%d+)$')
  return tonumber(d), tonumber(p), tonumber(t)
end

-- Hands free permits to the queue's head, in order; a head that does not fit blocks those behind
-- it (no starvation of large requests). Waiters whose own lease ran out are skipped. Returns how
-- many waiters it granted (hand-offs).
local function gq_promote(limit, now, channel)
  local handed = 0
  while true do
    local head = redis.call('LINDEX', Q, 0)
    if not head then return handed end
    local deadline, permits, ttl = gq_waiter(head)
    if deadline and deadline > now then
      if gq_used() + permits > limit then return handed end
      -- Good until the waiter's own lease would have run out (at most ttl): a waiter that died in
      -- the queue keeps the grant no longer than that. A live one renews it at once.
      local fence, exp = gq_grant(head, permits, math.min(ttl, deadline - now), now)
      wake(channel, head .. ' g ' .. int(fence) .. ' ' .. int(exp))
      handed = handed + 1
    end
    redis.call('LPOP', Q)
    redis.call('HDEL', W, head)
  end
end

-- When to re-check at the latest: the earliest holder's expiry, and often enough to renew the
-- waiter's own lease.
local function gq_retry(now, wttl)
  local first = redis.call('ZRANGE', H, 0, 0, 'WITHSCORES')
  local r = 60000
  if first[2] then r = math.max(1, tonumber(first[2]) - now) end
  if wttl > 0 then r = math.min(r, math.floor(wttl / 3)) end
  return r
end

local function gq_release(token, limit, now, channel)
  local g = redis.call('HGET', G, token)
  redis.call('ZREM', H, token)
  redis.call('HDEL', G, token)
  if g then redis.call('HINCRBY', M, 'used', -tonumber(string.match(g, '^(%d+)'))) end
  if limit then return gq_promote(limit, now, channel) end
  return 0
end
`;

/**
 * Takes a grant, or queues for one. ARGV: token, permits, ttlMs, waiterTtlMs (0: do not queue),
 * limit ('' reads config), channel. Reply: {1, fence, expiresAt} when this call granted it,
 * {2, fence, expiresAt} when it had been handed over earlier (the message was missed),
 * {0, retryInMs} otherwise.
 */
export const ACQUIRE_LUA =
  GRANT_QUEUE_LUA +
  `
local token, permits, ttl, wttl, channel = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[6]
local limit = gq_limit(ARGV[5])
if not limit then return redis.error_reply('NOT_FOUND no limit is set') end
if not permits or permits < 1 or permits ~= math.floor(permits) or not ttl or ttl < 1 or ttl ~= math.floor(ttl) then
  return redis.error_reply('INVALID_ARGUMENT permits and ttlMs must be positive integers')
end
if permits > limit then return redis.error_reply('INVALID_ARGUMENT permits exceed the limit of ' .. limit) end
local now = now_ms()
gq_reclaim(now)
local waiting = redis.call('LLEN', Q)
if waiting > 0 then
  gq_promote(limit, now, channel)
  waiting = redis.call('LLEN', Q)
end
local held = (not gq_fresh) and redis.call('ZSCORE', H, token)
if held then
  return {2, string.match(redis.call('HGET', G, token), '|(%d+)$'), int(tonumber(held))}
end
local queued = waiting > 0 and redis.call('HEXISTS', W, token) == 1
if not queued and waiting == 0 and gq_used() + permits <= limit then
  local fence, exp = gq_grant(token, permits, ttl, now)
  return {1, int(fence), int(exp)}
end
if wttl == 0 then return {0, gq_retry(now, 0)} end
if not queued then redis.call('RPUSH', Q, token) end
redis.call('HSET', W, token, int(now + wttl) .. '|' .. permits .. '|' .. ttl)
keep_for(Q, wttl * 2)
keep_for(W, wttl * 2)
return {0, gq_retry(now, wttl)}
`;

/** ARGV: token, limit, channel. Reply: how many waiters it handed permits to; NOT_HELD when the token holds nothing. */
export const RELEASE_LUA =
  GRANT_QUEUE_LUA +
  `
local token, channel = ARGV[1], ARGV[3]
local limit = gq_limit(ARGV[2])
local now = now_ms()
gq_reclaim(now)
if not redis.call('ZSCORE', H, token) then
  if limit then gq_promote(limit, now, channel) end
  return redis.error_reply('NOT_HELD the lease expired or was never held')
end
return gq_release(token, limit, now, channel)
`;

/** ARGV: token, ttlMs. Reply: the new expiry (server ms); NOT_HELD when the lease is gone. */
export const EXTEND_LUA =
  GRANT_QUEUE_LUA +
  `
local token, ttl = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
gq_reclaim(now)
if not redis.call('ZSCORE', H, token) then return redis.error_reply('NOT_HELD the lease expired or passed to another holder') end
local exp = now + ttl
redis.call('ZADD', H, 'XX', exp, token)
keep_for(H, ttl)
keep_for(G, ttl)
keep_for(M, ttl)
return int(exp)
`;

/**
 * A waiter gives up: leaves the queue and gives back a grant that was handed to it in flight.
 * ARGV: token, limit, channel. Reply 1.
 */
export const CANCEL_LUA =
  GRANT_QUEUE_LUA +
  `
local token, channel = ARGV[1], ARGV[3]
local limit = gq_limit(ARGV[2])
redis.call('LREM', Q, 0, token)
redis.call('HDEL', W, token)
local now = now_ms()
gq_reclaim(now)
if redis.call('ZSCORE', H, token) then
  gq_release(token, limit, now, channel)
elseif limit then
  gq_promote(limit, now, channel)
end
return 1
`;

/**
 * Reads the state without changing it. ARGV: limit ('' reads config).
 * Reply: {limit or -1, live waiters, holder1 token, permits, fence, expiresAt, holder2 ...}.
 */
export const INSPECT_LUA =
  GRANT_QUEUE_LUA +
  `
local limit = gq_limit(ARGV[1]) or -1
local now = now_ms()
local reply = {limit, 0}
local waiters = 0
for _, w in ipairs(redis.call('HVALS', W)) do
  if tonumber(string.match(w, '^(%d+)')) > now then waiters = waiters + 1 end
end
reply[2] = waiters
local holders = redis.call('ZRANGEBYSCORE', H, '(' .. int(now), '+inf', 'WITHSCORES')
for i = 1, #holders, 2 do
  local g = redis.call('HGET', G, holders[i]) or '0|0'
  local p, f = string.match(g, '^(%d+)|(%d+)$')
  table.insert(reply, holders[i])
  table.insert(reply, tonumber(p))
  table.insert(reply, f)
  table.insert(reply, int(tonumber(holders[i + 1])))
end
return reply
`;
