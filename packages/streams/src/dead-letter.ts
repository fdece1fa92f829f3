import { defineScript } from '@x/redis-core';
import { ERRORS, STREAM_LUA } from './lua';

/**
 * Records a failed delivery in one script. While the message has been delivered fewer than
 * maxDeliveries times, its delivery counter is raised for the retry (XCLAIM RETRYCOUNT, which
 * also resets its idle time so no other consumer claims it during the backoff). At
 * maxDeliveries (or when `force` is set: a message delivered too often without ever reaching a
 * verdict, i.e. its handler kept crashing the process), the message is added to the dead-letter
 * stream with its error and acknowledged; in stateful mode the position moves past it and the
 * state is untouched.
 *
 * KEYS: group hash, source stream, dead-letter stream
 * ARGV: mode ('s' | 'c'), token, epoch, group, consumer, id, error, maxDeliveries,
 *       source stream name, force (1|0), dead-letter maxLen, maxAgeMs, approximate (1|0)
 * Reply: {'dead', dead-letter entry id, deliveries} or {'retry', '', next delivery number}
 */
export const failScript = defineScript({
  name: 'streams.fail',
  keys: ['group', 'stream', 'dead'],
  errors: ERRORS,
  source: `${STREAM_LUA}
local G, S, D = KEYS[1], KEYS[2], KEYS[3]
local mode, group, consumer, id = ARGV[1], ARGV[4], ARGV[5], ARGV[6]
if not is_int(ARGV[8], 1, 1000000) then return bad('maxDeliveries must be a positive integer') end
if not string.match(id, '^%d+-%d+$') then return bad('malformed message id') end
if not trim_ok(ARGV[11], ARGV[12], ARGV[13]) then return bad('malformed retention') end
if mode == 's' then
  local err = fence(G, ARGV[2], ARGV[3])
  if err then return err end
  -- A resent call whose first run moved the position past the message: nothing left to do.
  local pos = redis.call('HGET', G, 'pos')
  if pos and id_le(id, pos) then return {'dead', '', 0} end
end
local p = redis.call('XPENDING', S, group, id, id, 1, consumer)
if not p[1] then return redis.error_reply('STREAM_FENCED message ' .. id .. ' is not pending for this consumer') end
local count = p[1][4]
if ARGV[10] == '1' or count >= tonumber(ARGV[8]) then
  if not writable(D, 'stream') then return wrongtype(D, 'stream') end
  local fields = '{}'
  local entry = redis.call('XRANGE', S, id, id)[1]
  if entry and #entry[2] > 0 then
    local obj = {}
    for i = 1, #entry[2], 2 do obj[entry[2][i]] = entry[2][i + 1] end
    fields = cjson.encode(obj)
  end
  local dead = redis.call('XADD', D, '*', 'id', id, 'stream', ARGV[9], 'group', group,
    'error', ARGV[7], 'deliveries', count, 'fields', fields)
  redis.call('XACK', S, group, id)
  trim(D, ARGV[11], ARGV[12], ARGV[13])
  if mode == 's' then redis.call('HSET', G, 'pos', id) end
  return {'dead', dead, count}
end
redis.call('XCLAIM', S, group, consumer, 0, id, 'RETRYCOUNT', count + 1, 'JUSTID')
return {'retry', '', count + 1}`,
});
