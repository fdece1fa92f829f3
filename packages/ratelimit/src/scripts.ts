import { LUA_HELPERS, defineScript, type Script } from '@x/redis-core';
import { CorruptStateError } from './errors';

/** Largest `limit` of one rate limit. */
export const MAX_LIMIT = 1_000_000_000;
/** Most limits one limiter checks at once. */
export const MAX_LIMITS = 16;

/**
 * Shared by every rate-limit script. Each limit has one key (KEYS[i] for ARGV's i-th limit), whose
 * name carries the algorithm, the limit and the window, so two limiters that share a name but not
 * a configuration never read each other's state.
 *
 * ARGV[1] algorithm, ARGV[2] cost (1 .. smallest limit), ARGV[3] wake-up channel, ARGV[4] n (the
 * number of limits), then per limit i: ARGV[3 + 2i] limit, ARGV[4 + 2i] windowMs.
 *
 * Time is the server's, in microseconds. Each limit of `limit` units per `windowMs` has an
 * emission interval T = ceil(windowMs * 1000 / limit) µs (rounded up, so the rate is never above
 * the one asked for) and a burst of `limit` units.
 *
 * State per algorithm (the value of the limit's key):
 *   gcra            "<tat>"            theoretical arrival time, µs
 *   token-bucket    "<tokens>:<ts>"    tokens, and the µs from which the next refill step counts
 *   fixed-window    "<index>:<count>"  window index (floor(now_ms / windowMs)) and its count
 *   sliding-window  a sorted set of admissions: score = µs, member "<running total>:<cost>"
 *
 * `check(i)` reads limit i and says whether `cost` fits, how long until it would (µs), the
 * remaining units and the µs at which the limit is full again, both before and after a charge,
 * and how to write the charge. Nothing is written until every limit admits.
 */
const RATE_LIMIT_LUA =
  LUA_HELPERS +
  `
local MAX_LIMIT = ${MAX_LIMIT}
local MAX_WINDOW = 2147483647
local MAX_LIMITS = ${MAX_LIMITS}

local function int_arg(v, lo, hi)
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < lo or n > hi then return nil end
  return n
end

local ALG = ARGV[1]
local CHANNEL = ARGV[3]
local COST, N
local LIM, WIN, T, BURST = {}, {}, {}, {}

local function parse()
  if ALG ~= 'gcra' and ALG ~= 'sliding-window' and ALG ~= 'fixed-window' and ALG ~= 'token-bucket' then
    return 'algorithm must be one of gcra, sliding-window, fixed-window, token-bucket'
  end
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

local function corrupt(i)
  return error({ err = 'CORRUPT_STATE key ' .. KEYS[i] .. ' does not hold rate-limit state' })
end

local function px(us)
  local ms = math.ceil(us / 1000)
  if ms < 1 then ms = 1 end
  return ms
end

-- { ok, wait, before, after, full_before, full_after, write }
local function check_gcra(i, now)
  local v = redis.call('GET', KEYS[i])
  local tat = now
  if v then
    tat = tonumber(v)
    if not tat then corrupt(i) end
    if tat < now then tat = now end
  end
  local t, burst = T[i], BURST[i]
  local new = tat + COST * t
  local r = { before = math.floor((burst - (tat - now)) / t), full_before = tat }
  if new - now <= burst then
    r.ok, r.wait = true, 0
    r.after, r.full_after = math.floor((burst - (new - now)) / t), new
    r.write = function() redis.call('SET', KEYS[i], int(new), 'PX', px(new - now)) end
  else
    r.ok, r.wait = false, new - burst - now
  end
  return r
end

local function tb_state(i, now)
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

local function check_token_bucket(i, now)
  local l, t = LIM[i], T[i]
  local k, ts = tb_state(i, now)
  local r = { before = k, full_before = ts + (l - k) * t }
  if k >= COST then
    local k2 = k - COST
    local full = ts + (l - k2) * t
    r.ok, r.wait, r.after, r.full_after = true, 0, k2, full
    r.write = function() redis.call('SET', KEYS[i], int(k2) .. ':' .. int(ts), 'PX', px(full - now)) end
  else
    r.ok, r.wait = false, ts + (COST - k) * t - now
  end
  return r
end

local function fw_state(i, now)
  local w = WIN[i] / 1000
  local index = math.floor(math.floor(now / 1000) / w)
  local v = redis.call('GET', KEYS[i])
  if not v then return index, 0 end
  local a, b = string.match(v, '^(%d+):(%d+)$')
  local stored, count = tonumber(a), tonumber(b)
  if not stored or not count then corrupt(i) end
  -- A clock that went back stays in the window it counted in.
  if stored >= index then return stored, count end
  return index, 0
end

local function check_fixed_window(i, now)
  local l = LIM[i]
  local index, count = fw_state(i, now)
  local full = (index + 1) * WIN[i]
  local r = { before = l - count, full_before = count > 0 and full or now }
  if count + COST <= l then
    r.ok, r.wait, r.after, r.full_after = true, 0, l - count - COST, full
    r.write = function() redis.call('SET', KEYS[i], int(index) .. ':' .. int(count + COST), 'PX', px(full - now)) end
  else
    r.ok, r.wait = false, full - now
  end
  return r
end

local function entry(i, m)
  local a, b = string.match(m, '^(%d+):(%d+)$')
  local total, cost = tonumber(a), tonumber(b)
  if not total or not cost then corrupt(i) end
  return total, cost
end

-- The live admissions of a sliding window: their sum, the newest entry's running total and score.
local function sw_state(i, now)
  local z = KEYS[i]
  local cutoff = now - WIN[i]
  local newest = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
  if #newest == 0 or tonumber(newest[2]) <= cutoff then return 0, 0, now, cutoff end
  local oldest = redis.call('ZRANGEBYSCORE', z, '(' .. int(cutoff), '+inf', 'LIMIT', 0, 1)
  local top = entry(i, newest[1])
  local first_total, first_cost = entry(i, oldest[1])
  return top - first_total + first_cost, top, tonumber(newest[2]), cutoff
end

local function check_sliding_window(i, now)
  local l, z = LIM[i], KEYS[i]
  local sum, top, newest, cutoff = sw_state(i, now)
  local r = { before = l - sum, full_before = newest + WIN[i] }
  if sum == 0 then r.full_before = now end
  if sum + COST <= l then
    r.ok, r.wait, r.after, r.full_after = true, 0, l - sum - COST, now + WIN[i]
    r.write = function()
      redis.call('ZREMRANGEBYSCORE', z, '-inf', int(cutoff))
      redis.call('ZADD', z, int(now), int(top + COST) .. ':' .. int(COST))
      redis.call('PEXPIRE', z, px(WIN[i]))
    end
  else
    -- The oldest admissions must leave the window until COST fits: walk them in order.
    local need = sum + COST - l
    local offset, freed = 0, 0
    while true do
      local page = redis.call('ZRANGEBYSCORE', z, '(' .. int(cutoff), '+inf', 'WITHSCORES', 'LIMIT', offset, 64)
      if #page == 0 then break end
      for j = 1, #page, 2 do
        local _, c = entry(i, page[j])
        freed = freed + c
        if freed >= need then
          r.wait = tonumber(page[j + 1]) + WIN[i] - now
          break
        end
      end
      if r.wait then break end
      offset = offset + 64
    end
    r.ok = false
    if not r.wait then r.wait = WIN[i] end
  end
  return r
end

local CHECK = {
  ['gcra'] = check_gcra,
  ['token-bucket'] = check_token_bucket,
  ['fixed-window'] = check_fixed_window,
  ['sliding-window'] = check_sliding_window,
}

-- Reply: { allowed (0|1), retryAfterMs, server time µs, then per limit: remaining, resetAt ms,
-- retryAfterMs of that limit alone }.
local function reply(allowed, wait, now, rows)
  local out = { allowed, math.ceil(wait / 1000), now }
  for i = 1, N do
    out[#out + 1] = rows[i][1]
    out[#out + 1] = math.ceil(rows[i][2] / 1000)
    out[#out + 1] = math.ceil((rows[i][3] or 0) / 1000)
  end
  return out
end

local function decide(charge)
  local now = now_us()
  local checks, all, wait = {}, true, 0
  local check = CHECK[ALG]
  for i = 1, N do
    local r = check(i, now)
    checks[i] = r
    if not r.ok then
      all = false
      if r.wait > wait then wait = r.wait end
    end
  end
  local rows = {}
  if all and charge then
    for i = 1, N do
      checks[i].write()
      rows[i] = { checks[i].after, checks[i].full_after }
    end
  else
    for i = 1, N do rows[i] = { checks[i].before, checks[i].full_before, checks[i].wait } end
  end
  return reply(all and 1 or 0, all and 0 or wait, now, rows)
end
`;

/** One script, defined once per number of limits (the source, and so the SHA1, is the same). */
export type RateLimitScript = (limits: number) => Script;

function rateLimitScript(name: string, body: string): RateLimitScript {
  const source = `${RATE_LIMIT_LUA}\nlocal bad = parse()\nif bad then return redis.error_reply('INVALID_ARGUMENT ' .. bad) end\n${body}`;
  const byCount: Script[] = [];
  return (limits) =>
    (byCount[limits] ??= defineScript({
      name: `ratelimit.${name}`,
      keys: Array.from({ length: limits }, (_, i) => `limit${i + 1}`),
      source,
      errors: { CORRUPT_STATE: (detail) => new CorruptStateError(detail) },
    }));
}

/** `limit`: charges COST to every limit if all admit, else nothing. Reply as `reply` above. */
export const limitScript = rateLimitScript('limit', `return decide(true)`);

/** `peek`: whether COST would be admitted now; writes nothing. Reply as `reply` above. */
export const peekScript = rateLimitScript('peek', `return decide(false)`);

/**
 * `refund`: gives COST back to every limit, never above full; wakes waiters ("* refund").
 * Reply as `reply` above, with allowed 1 and retryAfterMs 0.
 */
export const refundScript = rateLimitScript(
  'refund',
  `
local now = now_us()
local rows = {}
for i = 1, N do
  local key, l, t = KEYS[i], LIM[i], T[i]
  if ALG == 'gcra' then
    local tat = tonumber(redis.call('GET', key) or '0')
    if not tat then corrupt(i) end
    tat = tat - COST * t
    if tat <= now then
      redis.call('DEL', key)
      tat = now
    else
      redis.call('SET', key, int(tat), 'PX', px(tat - now))
    end
    rows[i] = { math.floor((BURST[i] - (tat - now)) / t), tat }
  elseif ALG == 'token-bucket' then
    local k, ts = tb_state(i, now)
    k = math.min(l, k + COST)
    if k == l then redis.call('DEL', key) ts = now
    else redis.call('SET', key, int(k) .. ':' .. int(ts), 'PX', px(ts + (l - k) * t - now)) end
    rows[i] = { k, ts + (l - k) * t }
  elseif ALG == 'fixed-window' then
    local index, count = fw_state(i, now)
    count = math.max(0, count - COST)
    local full = (index + 1) * WIN[i]
    if count == 0 then redis.call('DEL', key) full = now
    else redis.call('SET', key, int(index) .. ':' .. int(count), 'PX', px(full - now)) end
    rows[i] = { l - count, full }
  else
    local cutoff = now - WIN[i]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(cutoff))
    -- Give back the newest admissions first: they are the ones the refund's call made.
    local left = COST
    while left > 0 do
      local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      if #newest == 0 then break end
      local total, c = entry(i, newest[1])
      redis.call('ZREM', key, newest[1])
      if c > left then
        redis.call('ZADD', key, newest[2], int(total - left) .. ':' .. int(c - left))
        left = 0
      else
        left = left - c
      end
    end
    local sum, _, newest = sw_state(i, now)
    rows[i] = { l - sum, sum == 0 and now or newest + WIN[i] }
  end
end
wake(CHANNEL, '* refund')
return reply(1, 0, now, rows)
`,
);

/** `reset`: deletes every limit's key and wakes waiters ("* reset"). Reply: 1. */
export const resetScript = rateLimitScript(
  'reset',
  `
for i = 1, N do redis.call('DEL', KEYS[i]) end
wake(CHANNEL, '* reset')
return 1
`,
);
