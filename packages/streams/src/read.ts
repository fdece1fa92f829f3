import { defineScript } from '@x/redis-core';
import { ERRORS, STREAM_LUA } from './lua';

/**
 * Reads the next batch of the stateful processor, fenced by its lease epoch.
 *
 * KEYS: group hash, source stream
 * ARGV: token, epoch, group, consumer, count
 * Reply: kind, cursor, lastId, then id, deliveries, fields per message (see read_batch).
 */
export const readStatefulScript = defineScript({
  name: 'streams.read-stateful',
  keys: ['group', 'stream'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not is_int(ARGV[5], 1, 1000) then return bad('count must be an integer from 1 to 1000') end
local err = fence(KEYS[1], ARGV[1], ARGV[2])
if err then return err end
local out = {}
read_batch(out, KEYS[2], ARGV[3], ARGV[4], ARGV[5], 0, '0-0')
return out`,
});

/**
 * Reads the next batch of a competing consumer: its own pending messages, else (when a claim
 * pass is due) messages idle for claimIdleMs in other consumers' hands, else new ones. When a
 * claim pass has gone round the whole pending list, consumers that left long ago with nothing
 * pending are forgotten, with their commit markers.
 *
 * KEYS: group hash, source stream
 * ARGV: group, consumer, count, claimIdleMs (0: no claim pass), cursor, forgetIdleMs
 * Reply: as readStatefulScript.
 */
export const readCompetingScript = defineScript({
  name: 'streams.read-competing',
  keys: ['group', 'stream'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not is_int(ARGV[3], 1, 1000) then return bad('count must be an integer from 1 to 1000') end
if not is_int(ARGV[4], 0, 2147483647) or not is_int(ARGV[6], 0, 2147483647) then return bad('durations must be integers') end
local out = {}
local claim_idle = tonumber(ARGV[4])
read_batch(out, KEYS[2], ARGV[1], ARGV[2], ARGV[3], claim_idle, ARGV[5] ~= '' and ARGV[5] or '0-0')
if claim_idle > 0 and out[2] == '0-0' then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[2], ARGV[1])) do
    local info = {}
    for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
    if info.name ~= ARGV[2] and info.pending == 0 and info.idle > tonumber(ARGV[6]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[1], info.name)
      redis.call('HDEL', KEYS[1], 'c:' .. info.name)
    end
  end
end
return out`,
});
