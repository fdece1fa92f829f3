import { defineScript } from '@x/redis-core';
import { ERRORS, STREAM_LUA } from './lua';

/**
 * Takes the group's lease (stateful mode) or joins the group (competing mode); creates the
 * consumer group when missing, at the committed position (at the beginning of the stream for
 * a new group, so messages published before the first start are processed).
 *
 * KEYS: group hash, source stream
 * ARGV: token, leaseMs, group, mode ('stateful' | 'competing')
 * Reply: competing `{1}`; stateful granted `{1, epoch, expiresAt, state|nil, position}`,
 * held by another `{0, msUntilItsLeaseEnds}`.
 */
export const acquireScript = defineScript({
  name: 'streams.acquire',
  keys: ['group', 'stream'],
  errors: ERRORS,
  source: `${STREAM_LUA}
local G, S = KEYS[1], KEYS[2]
local token, group, mode = ARGV[1], ARGV[3], ARGV[4]
if not is_int(ARGV[2], 1, 2147483647) then return bad('leaseMs must be a positive integer') end
if mode ~= 'stateful' and mode ~= 'competing' then return bad('unknown mode') end
if not writable(G, 'hash') then return wrongtype(G, 'hash') end
if not writable(S, 'stream') then return wrongtype(S, 'stream') end
local current = redis.call('HGET', G, 'mode')
if current and current ~= mode then
  return redis.error_reply('STREAM_MODE_CONFLICT group ' .. group .. ' runs in ' .. current .. ' mode, not ' .. mode)
end
local pos = redis.call('HGET', G, 'pos') or '0'
local created = redis.pcall('XGROUP', 'CREATE', S, group, pos, 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, '^BUSYGROUP') then return created end
if not current then redis.call('HSET', G, 'mode', mode) end
if mode == 'competing' then return {1} end
local v = redis.call('HMGET', G, 'owner', 'expires')
local now = now_ms()
if v[1] and v[1] ~= token and tonumber(v[2] or '0') > now then
  return {0, tonumber(v[2]) - now}
end
local epoch = next_fence(G, 'epoch')
local expires = now + tonumber(ARGV[2])
redis.call('HSET', G, 'owner', token, 'expires', expires)
return {1, int(epoch), expires, redis.call('HGET', G, 'state'), pos}`,
});

/**
 * Renews the lease of `token` at `epoch`.
 *
 * KEYS: group hash
 * ARGV: token, epoch, leaseMs
 * Reply: the new expiry (server epoch ms), or -1 when the lease is no longer ours.
 */
export const renewScript = defineScript({
  name: 'streams.renew',
  keys: ['group'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not is_int(ARGV[3], 1, 2147483647) then return bad('leaseMs must be a positive integer') end
local v = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return -1 end
local expires = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expires', expires)
return expires`,
});

/**
 * Gives the lease back (stop, or leaving after an error) and wakes the standby instances of the
 * group; messages read but never handled are handed back uncounted.
 *
 * KEYS: group hash, source stream
 * ARGV: token, epoch, channel, target, group, consumer, unhandled ids...
 * Reply: 1 when released, 0 when the lease was no longer ours.
 */
export const releaseScript = defineScript({
  name: 'streams.release',
  keys: ['group', 'stream'],
  errors: ERRORS,
  source: `${STREAM_LUA}
local v = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end
giveback(KEYS[2], ARGV[5], ARGV[6], 7, nil)
redis.call('HDEL', KEYS[1], 'owner', 'expires')
wake(ARGV[3], ARGV[4] .. ' released')
return 1`,
});

/**
 * A competing consumer leaves: its unhandled messages are handed back idle enough to be
 * claimed by the others at once, its commit marker is dropped, and its name is removed from
 * the group when nothing is pending for it.
 *
 * KEYS: group hash, source stream
 * ARGV: group, consumer, claimIdleMs, unhandled ids...
 * Reply: 1
 */
export const leaveScript = defineScript({
  name: 'streams.leave',
  keys: ['group', 'stream'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not is_int(ARGV[3], 0, 2147483647) then return bad('claimIdleMs must be an integer') end
giveback(KEYS[2], ARGV[1], ARGV[2], 4, ARGV[3])
redis.call('HDEL', KEYS[1], 'c:' .. ARGV[2])
local left = redis.pcall('XPENDING', KEYS[2], ARGV[1], '-', '+', 1, ARGV[2])
if type(left) == 'table' and not left.err and #left == 0 then
  redis.pcall('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[1], ARGV[2])
end
return 1`,
});
