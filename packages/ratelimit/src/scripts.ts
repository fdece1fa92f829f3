import { defineScript, type Script } from '@x/redis-core';
import { CorruptStateError } from './errors';
import type { RateLimitAlgorithm } from './types';

/** Largest `limit` of one rate limit. */
export const MAX_LIMIT = 1_000_000_000;
/** Most limits one limiter checks at once. */
export const MAX_LIMITS = 16;

/**
 * What every rate-limit script starts with. Each limit has one key (KEYS[i] for ARGV's i-th
 * limit), whose name carries the algorithm, the limit and the window, so two limiters that share
 * a name but not a configuration never read each other's state.
 *
 * ARGV[1] algorithm (the script's own: each algorithm has its own scripts, so a call runs only
 * the Lua it needs), ARGV[2] cost (1 .. smallest limit), ARGV[3] wake-up channel, ARGV[4] n (the
 * number of limits), then per limit i: ARGV[3 + 2i] limit, ARGV[4 + 2i] windowMs.
 *
 * Time is the server's (`TIME`), in microseconds. Each limit of `limit` units per `windowMs` has
 * an emission interval T = ceil(windowMs * 1000 / limit) µs (rounded up, so the rate is never
 * above the one asked for) and a burst of `limit` units. Everything is checked before the first
 * write; nothing is written until every limit admits.
 */
const PRELUDE = (algorithm: RateLimitAlgorithm) => `
local MAX_LIMIT = ${MAX_LIMIT}
local MAX_WINDOW = 2147483647
local MAX_LIMITS = ${MAX_LIMITS}

local function int_arg(v, lo, hi)
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < lo or n > hi then return nil end
  return n
end

local COST, N
local LIM, WIN, T, BURST = {}, {}, {}, {}

local function parse()
  if ARGV[1] ~= '${algorithm}' then return 'algorithm must be one of gcra, sliding-window, fixed-window, token-bucket' end
  N = int_arg(ARGV[4], 1, MAX_LIMITS)
  if not N then return 'limits must hold 1 to ' .. MAX_LIMITS .. ' limits' end
  if #KEYS ~= N then return 'one key per limit' end
  local smallest = MAX_LIMIT
  for i = 1, N do
    local l = int_arg(ARGV[3 + 2 * i], 1, MAX_LIMIT)
    if not l then return 'limit must be an integer from 1 to ' .. MAX_LIMIT end
    local w = int_arg(ARGV[4 + 2 * i], 1, MAX_WINDOW)
    if not w then return 'windowMs must be an integer from 1 to ' .. MAX_WINDOW end
    LIM[i] = l
    WIN[i] = w * 1000
    -- ceil(WIN / l) exactly: the division may round either way, the product tells which.
    local t = math.floor(WIN[i] / l)
    if t * l < WIN[i] then t = t + 1 end
    if t < 1 then t = 1 end
    T[i] = t
    BURST[i] = t * l
    if l < smallest then smallest = l end
  end
  COST = int_arg(ARGV[2], 1, smallest)
  if not COST then return 'cost must be an integer from 1 to the smallest limit (' .. smallest .. ')' end
end

local bad = parse()
if bad then return redis.error_reply('INVALID_ARGUMENT ' .. bad) end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function int(x)
  return string.format('%.0f', x)
end

local function px(us)
  local ms = math.ceil(us / 1000)
  if ms < 1 then ms = 1 end
  return ms
end

local function corrupt(i)
  return error({ err = 'CORRUPT_STATE key ' .. KEYS[i] .. ' does not hold rate-limit state' })
end

local function wake(message)
  local ok = redis.pcall('SPUBLISH', ARGV[3], message)
  if type(ok) == 'table' and ok.err then redis.call('PUBLISH', ARGV[3], message) end
end

-- What check() found out for commit(): the new state of each limit.
local S1, S2 = {}, {}
`;

/**
 * Per algorithm, three functions over limit i at server time `now` (µs):
 *
 * - `check(i, now)` → ok, wait (µs until COST fits, 0 when it does), remaining before and after
 *   a charge, µs at which the limit is full again before and after a charge. Reads only.
 * - `commit(i, now)` writes the charge check() found to fit.
 * - `refund_one(i, now)` gives COST back, never above full → remaining, µs full again.
 *
 * State (the value of the limit's key):
 *   gcra            "<tat>"            theoretical arrival time, µs
 *   token-bucket    "<tokens>:<ts>"    tokens, and the µs from which the next refill step counts
 *   fixed-window    "<index>:<count>"  window index (floor(now_ms / windowMs)) and its count
 *   sliding-window  a sorted set of admissions: score = µs, member "<running total>:<cost>"
 */
const ALGORITHM_LUA: Record<RateLimitAlgorithm, string> = {
  gcra: `
local function check(i, now)
  local v = redis.call('GET', KEYS[i])
  local tat = now
  if v then
    tat = tonumber(v)
    if not tat then corrupt(i) end
    if tat < now then tat = now end
  end
  local t, burst = T[i], BURST[i]
  local new = tat + COST * t
  local before = math.floor((burst - (tat - now)) / t)
  if new - now <= burst then
    S1[i] = new
    return true, 0, before, math.floor((burst - (new - now)) / t), tat, new
  end
  return false, new - burst - now, before, 0, tat, 0
end

local function commit(i, now)
  redis.call('SET', KEYS[i], int(S1[i]), 'PX', px(S1[i] - now))
end

local function refund_one(i, now)
  local v = redis.call('GET', KEYS[i])
  local tat = now
  if v then
    tat = tonumber(v)
    if not tat then corrupt(i) end
  end
  tat = tat - COST * T[i]
  if tat <= now then
    if v then redis.call('DEL', KEYS[i]) end
    tat = now
  else
    redis.call('SET', KEYS[i], int(tat), 'PX', px(tat - now))
  end
  return math.floor((BURST[i] - (tat - now)) / T[i]), tat
end
`,
  'token-bucket': `
local function state(i, now)
  local v = redis.call('GET', KEYS[i])
  local l, t = LIM[i], T[i]
  if not v then return l, now end
  local a, b = string.match(v, '^(%d+):(%d+)$')
  local k, ts = tonumber(a), tonumber(b)
  if not k or not ts or k > l then corrupt(i) end
  -- A clock that went back refills nothing until it catches up.
  if ts > now then ts = now end
  local steps = math.floor((now - ts) / t)
  k = k + steps
  ts = ts + steps * t
  if k >= l then return l, now end
  return k, ts
end

local function check(i, now)
  local l, t = LIM[i], T[i]
  local k, ts = state(i, now)
  local full = ts + (l - k) * t
  if k >= COST then
    S1[i], S2[i] = k - COST, ts
    return true, 0, k, k - COST, full, full + COST * t
  end
  return false, ts + (COST - k) * t - now, k, 0, full, 0
end

local function commit(i, now)
  local full = S2[i] + (LIM[i] - S1[i]) * T[i]
  redis.call('SET', KEYS[i], int(S1[i]) .. ':' .. int(S2[i]), 'PX', px(full - now))
end

local function refund_one(i, now)
  local l, t = LIM[i], T[i]
  local k, ts = state(i, now)
  k = math.min(l, k + COST)
  if k == l then
    redis.call('DEL', KEYS[i])
    ts = now
  else
    redis.call('SET', KEYS[i], int(k) .. ':' .. int(ts), 'PX', px(ts + (l - k) * t - now))
  end
  return k, ts + (l - k) * t
end
`,
  'fixed-window': `
local function state(i, now)
  local index = math.floor(math.floor(now / 1000) / (WIN[i] / 1000))
  local v = redis.call('GET', KEYS[i])
  if not v then return index, 0 end
  local a, b = string.match(v, '^(%d+):(%d+)$')
  local stored, count = tonumber(a), tonumber(b)
  if not stored or not count then corrupt(i) end
  -- A clock that went back stays in the window it counted in.
  if stored >= index then return stored, count end
  return index, 0
end

local function check(i, now)
  local l = LIM[i]
  local index, count = state(i, now)
  local full = (index + 1) * WIN[i]
  local full_before = now
  if count > 0 then full_before = full end
  if count + COST <= l then
    S1[i], S2[i] = index, count + COST
    return true, 0, l - count, l - count - COST, full_before, full
  end
  return false, full - now, l - count, 0, full_before, 0
end

local function commit(i, now)
  redis.call('SET', KEYS[i], int(S1[i]) .. ':' .. int(S2[i]), 'PX', px((S1[i] + 1) * WIN[i] - now))
end

local function refund_one(i, now)
  local index, count = state(i, now)
  count = math.max(0, count - COST)
  local full = (index + 1) * WIN[i]
  if count == 0 then
    redis.call('DEL', KEYS[i])
    full = now
  else
    redis.call('SET', KEYS[i], int(index) .. ':' .. int(count), 'PX', px(full - now))
  end
  return LIM[i] - count, full
end
`,
  'sliding-window': `
local function entry(i, m)
  local a, b = string.match(m, '^(%d+):(%d+)$')
  local total, cost = tonumber(a), tonumber(b)
  if not total or not cost then corrupt(i) end
  return total, cost
end

-- The live admissions (score > now - window): their sum, the newest's running total and score.
local function state(i, now)
  local z = KEYS[i]
  local cutoff = now - WIN[i]
  local newest = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
  if #newest == 0 or tonumber(newest[2]) <= cutoff then return 0, 0, now, cutoff end
  local oldest = redis.call('ZRANGEBYSCORE', z, '(' .. int(cutoff), '+inf', 'LIMIT', 0, 1)
  local top = entry(i, newest[1])
  local first_total, first_cost = entry(i, oldest[1])
  return top - first_total + first_cost, top, tonumber(newest[2]), cutoff
end

local function check(i, now)
  local l, z = LIM[i], KEYS[i]
  local sum, top, newest, cutoff = state(i, now)
  local full_before = now
  if sum > 0 then full_before = newest + WIN[i] end
  if sum + COST <= l then
    S1[i], S2[i] = top, cutoff
    return true, 0, l - sum, l - sum - COST, full_before, now + WIN[i]
  end
  -- The oldest admissions must leave the window until COST fits: walk them in order (at most
  -- COST entries, each of cost 1 or more).
  local need = sum + COST - l
  local offset, freed = 0, 0
  while true do
    local page = redis.call('ZRANGEBYSCORE', z, '(' .. int(cutoff), '+inf', 'WITHSCORES', 'LIMIT', offset, 64)
    if #page == 0 then break end
    for j = 1, #page, 2 do
      local _, c = entry(i, page[j])
      freed = freed + c
      if freed >= need then return false, tonumber(page[j + 1]) + WIN[i] - now, l - sum, 0, full_before, 0 end
    end
    offset = offset + 64
  end
  return false, WIN[i], l - sum, 0, full_before, 0
end

local function commit(i, now)
  local z = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', z, '-inf', int(S2[i]))
  redis.call('ZADD', z, int(now), int(S1[i] + COST) .. ':' .. int(COST))
  redis.call('PEXPIRE', z, px(WIN[i]))
end

local function refund_one(i, now)
  local z = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', z, '-inf', int(now - WIN[i]))
  -- Give back the newest admissions first: they are the ones the refund's call made.
  local left = COST
  while left > 0 do
    local newest = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
    if #newest == 0 then break end
    local total, c = entry(i, newest[1])
    redis.call('ZREM', z, newest[1])
    if c > left then
      redis.call('ZADD', z, newest[2], int(total - left) .. ':' .. int(c - left))
      left = 0
    else
      left = left - c
    end
  end
  local sum, _, newest = state(i, now)
  if sum == 0 then return LIM[i], now end
  return LIM[i] - sum, newest + WIN[i]
end
`,
};

/**
 * Checks every limit, charges them all when all admit (and `charge` is true), else nothing.
 * Reply: { allowed (0|1), retryAfterMs, server time µs, then per limit: remaining, resetAt ms,
 * retryAfterMs of that limit alone }.
 */
const DECIDE_LUA = `
local function decide(charge)
  local now = now_us()
  local all, wait = true, 0
  local ok, w, before, after, full_before, full_after = {}, {}, {}, {}, {}, {}
  for i = 1, N do
    ok[i], w[i], before[i], after[i], full_before[i], full_after[i] = check(i, now)
    if not ok[i] then
      all = false
      if w[i] > wait then wait = w[i] end
    end
  end
  local out = { 0, math.ceil(wait / 1000), now }
  if all then out[1] = 1 end
  if all and charge then
    for i = 1, N do
      commit(i, now)
      out[#out + 1] = after[i]
      out[#out + 1] = math.ceil(full_after[i] / 1000)
      out[#out + 1] = 0
    end
  else
    for i = 1, N do
      out[#out + 1] = before[i]
      out[#out + 1] = math.ceil(full_before[i] / 1000)
      out[#out + 1] = math.ceil(w[i] / 1000)
    end
  end
  return out
end
`;

const BODIES = {
  /** `limit`: charges COST to every limit if all admit, else nothing. */
  limit: (a: RateLimitAlgorithm) => `${ALGORITHM_LUA[a]}${DECIDE_LUA}\nreturn decide(true)`,
  /** `peek`: whether COST would be admitted now; writes nothing. */
  peek: (a: RateLimitAlgorithm) => `${ALGORITHM_LUA[a]}${DECIDE_LUA}\nreturn decide(false)`,
  /** `refund`: gives COST back to every limit, never above full; wakes waiters ("* refund"). */
  refund: (a: RateLimitAlgorithm) => `${ALGORITHM_LUA[a]}
local now = now_us()
local out = { 1, 0, now }
for i = 1, N do
  local remaining, full = refund_one(i, now)
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(full / 1000)
  out[#out + 1] = 0
end
wake('* refund')
return out
`,
  /** `reset`: deletes every limit's key and wakes waiters ("* reset"). Reply: 1. */
  reset: () => `
for i = 1, N do redis.call('DEL', KEYS[i]) end
wake('* reset')
return 1
`,
};

/** One operation's script for an algorithm and a number of limits (defined once, then cached). */
export type RateLimitScript = (algorithm: RateLimitAlgorithm, limits: number) => Script;

function rateLimitScript(name: keyof typeof BODIES): RateLimitScript {
  const cache = new Map<string, Script>();
  return (algorithm, limits) => {
    const id = `${algorithm}/${limits}`;
    let script = cache.get(id);
    if (!script) {
      script = defineScript({
        name: `ratelimit.${name}`,
        keys: Array.from({ length: limits }, (_, i) => `limit${i + 1}`),
        source: PRELUDE(algorithm) + BODIES[name](algorithm),
        errors: { CORRUPT_STATE: (detail) => new CorruptStateError(detail) },
      });
      cache.set(id, script);
    }
    return script;
  };
}

/** Reply of limit, peek and refund: see `DECIDE_LUA`. */
export const limitScript = rateLimitScript('limit');
export const peekScript = rateLimitScript('peek');
export const refundScript = rateLimitScript('refund');
export const resetScript = rateLimitScript('reset');
