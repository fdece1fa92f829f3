/**
 * Lua helpers prepended to scripts that need them. Time always comes from the server
 * (`TIME`), so client clock skew cannot move a deadline.
 *
 * - `now_ms()`, `now_us()`: server time, read once per script run (a script is atomic).
 * - `int(x)`: an integer as a string with every digit (Lua's `tostring` switches to exponents).
 * - `wake(channel, message)`: SPUBLISH, or PUBLISH where sharded pub/sub is missing.
 * - `keep_for(key, ms)`: make `key` live at least `ms` more, never shortening a longer TTL.
 * - `next_fence(key, field)`: `max(last + 1, now_us())`, stored back; fences never go backwards,
 *   even when the counter was lost.
 *
 * @example
 * defineScript({ name: 'x', keys: ['k'], source: LUA_HELPERS + `return now_ms()` });
 */
export const LUA_HELPERS = `
local server_time_
local function server_time()
  if not server_time_ then server_time_ = redis.call('TIME') end
  return server_time_
end
local function now_ms()
  local t = server_time()
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function now_us()
  local t = server_time()
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x)
  return string.format('%.0f', x)
end
local function wake(channel, message)
  local ok = redis.pcall('SPUBLISH', channel, message)
  if type(ok) == 'table' and ok.err then redis.call('PUBLISH', channel, message) end
end
local function keep_for(key, ms)
  local t = redis.call('PTTL', key)
  if t ~= -2 and t < ms then redis.call('PEXPIRE', key, ms) end
end
local function next_fence(key, field)
  local last = tonumber(redis.call('HGET', key, field) or '0')
  local f = math.max(last + 1, now_us())
  redis.call('HSET', key, field, int(f))
  return f
end
`;
