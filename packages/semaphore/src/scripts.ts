import { GRANT_QUEUE_LUA, defineScript, type RedisClientLike, type Script, type ScriptErrorMap } from '@x/redis-core';

/** Largest limit a semaphore accepts. */
export const MAX_LIMIT = 1_000_000;

/**
 * The semaphore's own scripts. They include the grant queue's Lua (which names KEYS[1..6] H, G, Q,
 * W, M, C) and therefore take the queue's six keys, in the queue's order:
 *
 *   KEYS[1] holders  KEYS[2] grants  KEYS[3] queue  KEYS[4] waiters  KEYS[5] meta
 *   KEYS[6] config   HASH  limit, idle (ms; absent: the keys never expire for idleness)
 *
 * `sem_touch` gives every key of the semaphore at least `idle` ms more to live, when an idle TTL
 * was set: the config hash exactly that (it carries no lease of its own), the others never less
 * than their leases already have.
 */
const SEMAPHORE_LUA =
  GRANT_QUEUE_LUA +
  `
local MAX_LIMIT = ${MAX_LIMIT}

local function sem_touch()
  local idle = tonumber(redis.call('HGET', C, 'idle') or '')
  if not idle then return end
  redis.call('PEXPIRE', C, idle)
  keep_for(H, idle)
  keep_for(G, idle)
  keep_for(Q, idle)
  keep_for(W, idle)
  if redis.call('EXISTS', H) == 0 then
    -- Nobody holds a permit: the queue's meta (kept for a lease's length by each grant) is of no
    -- use any more (fences never go backwards without it) and goes with the config.
    redis.call('PEXPIRE', M, idle)
  else
    keep_for(M, idle)
  end
end

local function sem_limit_arg(arg)
  local n = tonumber(arg)
  if not n or n < 1 or n > MAX_LIMIT or n ~= math.floor(n) then return nil end
  return n
end
`;

/**
 * Creates the semaphore, or checks the limit of the one that exists. ARGV: limit, idleMs ('' for
 * none), channel. Reply: {created (0|1), limit in force, idle ms or ''}. A new semaphore wakes every
 * `attach` waiting on the channel ("* created") and hands permits to waiters left from before.
 */
const CREATE_LUA =
  SEMAPHORE_LUA +
  `
local limit = sem_limit_arg(ARGV[1])
if not limit then return redis.error_reply('INVALID_ARGUMENT limit must be an integer from 1 to ' .. MAX_LIMIT) end
local idle = ARGV[2]
if idle ~= '' then
  local i = tonumber(idle)
  if not i or i < 1 or i ~= math.floor(i) or i > 2147483647 then
    return redis.error_reply('INVALID_ARGUMENT idleTtlMs must be an integer from 1 to 2147483647')
  end
end
local channel = ARGV[3]
local existing = redis.call('HGET', C, 'limit')
if existing then
  if tonumber(existing) ~= limit then return redis.error_reply('SEMAPHORE_LIMIT_MISMATCH ' .. existing) end
  sem_touch()
  return {0, tonumber(existing), redis.call('HGET', C, 'idle') or ''}
end
redis.call('HSET', C, 'limit', limit)
if idle ~= '' then redis.call('HSET', C, 'idle', idle) end
sem_touch()
local now = now_ms()
gq_reclaim(now)
gq_promote(limit, now, channel)
wake(channel, '* created')
return {1, limit, idle}
`;

/** Reads the limit for `attach`. No ARGV. Reply: {1, limit, idle ms or ''}, or {0} when none is set. */
const ATTACH_LUA =
  SEMAPHORE_LUA +
  `
local limit = redis.call('HGET', C, 'limit')
if not limit then return {0} end
sem_touch()
return {1, tonumber(limit), redis.call('HGET', C, 'idle') or ''}
`;

/**
 * Resizes the semaphore. ARGV: limit, channel. Reply: the previous limit. Held permits are never
 * revoked; waiters that can no longer fit at all leave the queue and are woken ("<token> x") so
 * that their next attempt fails; the new room goes to the head of the queue at once.
 */
const SET_LIMIT_LUA =
  SEMAPHORE_LUA +
  `
local limit = sem_limit_arg(ARGV[1])
if not limit then return redis.error_reply('INVALID_ARGUMENT limit must be an integer from 1 to ' .. MAX_LIMIT) end
local channel = ARGV[2]
local old = redis.call('HGET', C, 'limit')
if not old then return redis.error_reply('NOT_FOUND no limit is set') end
redis.call('HSET', C, 'limit', limit)
local now = now_ms()
gq_reclaim(now)
if limit < tonumber(old) then
  for _, t in ipairs(redis.call('LRANGE', Q, 0, -1)) do
    local deadline, permits = gq_waiter(t)
    if deadline and permits > limit then
      redis.call('LREM', Q, 0, t)
      redis.call('HDEL', W, t)
      wake(channel, t .. ' x')
    end
  end
end
gq_promote(limit, now, channel)
sem_touch()
return tonumber(old)
`;

/** Reads the limit. No ARGV. Reply: the limit, or NOT_FOUND. */
const GET_LIMIT_LUA =
  SEMAPHORE_LUA +
  `
local limit = redis.call('HGET', C, 'limit')
if not limit then return redis.error_reply('NOT_FOUND no limit is set') end
sem_touch()
return tonumber(limit)
`;

/** Keeps the keys of an idle-expiring semaphore alive. No ARGV. Reply: 1, or 0 when it is gone. */
const TOUCH_LUA =
  SEMAPHORE_LUA +
  `
if redis.call('EXISTS', C) == 0 then return 0 end
sem_touch()
return 1
`;

/**
 * Removes every key of the semaphore and wakes everything waiting on it ("* destroyed"), so that
 * waiters fail at once instead of at their next re-check. ARGV: channel. Reply: 1.
 */
const DESTROY_LUA = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
local ok = redis.pcall('SPUBLISH', ARGV[1], '* destroyed')
if type(ok) == 'table' and ok.err then redis.call('PUBLISH', ARGV[1], '* destroyed') end
return 1
`;

const KEYS = ['holders', 'grants', 'queue', 'waiters', 'meta', 'config'] as const;

// Defined once per process (one SHA1 per source); each semaphore adds its own errors at the call.
const define = (name: string, source: string) => defineScript({ name: `semaphore.${name}`, keys: KEYS, source });
const SCRIPTS = {
  create: define('create', CREATE_LUA),
  attach: define('attach', ATTACH_LUA),
  setLimit: define('setLimit', SET_LIMIT_LUA),
  getLimit: define('getLimit', GET_LIMIT_LUA),
  touch: define('touch', TOUCH_LUA),
  destroy: define('destroy', DESTROY_LUA),
};

/** A script with one semaphore's errors mapped. */
export interface BoundScript {
  run(client: RedisClientLike, keys: readonly string[], args?: readonly (string | number)[]): Promise<unknown>;
}

/** The semaphore's scripts, with its errors mapped. */
export function semaphoreScripts(errors: ScriptErrorMap): Record<keyof typeof SCRIPTS, BoundScript> {
  const bind = (script: Script): BoundScript => ({ run: (client, keys, args) => script.run(client, keys, args, errors) });
  return {
    create: bind(SCRIPTS.create),
    attach: bind(SCRIPTS.attach),
    setLimit: bind(SCRIPTS.setLimit),
    getLimit: bind(SCRIPTS.getLimit),
    touch: bind(SCRIPTS.touch),
    destroy: bind(SCRIPTS.destroy),
  };
}

export type SemaphoreScripts = ReturnType<typeof semaphoreScripts>;
