import { defineScript } from '@x/redis-core';
import { ERRORS, STREAM_LUA } from './lua';

// The outbox: on Redis Cluster, a publish to a key outside the source's slot is staged by the
// commit in the group's own outbox stream (same slot, so it commits with everything else), and a
// relay in the consumer process moves each staged entry to its target. A marker beside the
// target (same slot as the target) holds the last outbox entry relayed there: the relay writes
// an entry only when its ID is above the marker, and moves the marker in the same script, so an
// entry reaches its target once even when a relay crashed between the write and the outbox's
// acknowledgement, and even when two relays (a zombie and its successor) run at once. Entries
// of one outbox reach each target in outbox order.

/**
 * Reads the head of the outbox, fenced like the consumer (stateful: the lease epoch).
 *
 * KEYS: group hash, outbox stream
 * ARGV: mode ('s' | 'c'), token, epoch, count
 * Reply: id, target key, fields (JSON array) per entry
 */
export const outboxReadScript = defineScript({
  name: 'streams.outbox-read',
  keys: ['group', 'outbox'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not is_int(ARGV[4], 1, 1000) then return bad('count must be an integer from 1 to 1000') end
if ARGV[1] == 's' then
  local err = fence(KEYS[1], ARGV[2], ARGV[3])
  if err then return err end
end
if not writable(KEYS[2], 'stream') then return wrongtype(KEYS[2], 'stream') end
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[4])) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  out[#out + 1] = e[1]; out[#out + 1] = f.target or ''; out[#out + 1] = f.fields or '[]'
end
return out`,
});

/**
 * Writes one staged entry to its target unless the marker shows it was written already.
 *
 * KEYS: target stream, relay marker
 * ARGV: outbox entry id, f1, v1, ...
 * Reply: 1 written, 0 already there
 */
export const relayScript = defineScript({
  name: 'streams.relay',
  keys: ['target', 'marker'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not string.match(ARGV[1], '^%d+-%d+$') then return bad('malformed outbox id') end
if #ARGV < 3 or #ARGV % 2 == 0 then return bad('fields must come in name/value pairs') end
local m = redis.call('GET', KEYS[2])
if m and id_le(ARGV[1], m) then return 0 end
if not writable(KEYS[1], 'stream') then return wrongtype(KEYS[1], 'stream') end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], ARGV[1])
return 1`,
});

/**
 * Deletes relayed entries from the outbox, fenced like the read.
 *
 * KEYS: group hash, outbox stream
 * ARGV: mode ('s' | 'c'), token, epoch, ids...
 * Reply: entries deleted
 */
export const outboxAckScript = defineScript({
  name: 'streams.outbox-ack',
  keys: ['group', 'outbox'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if ARGV[1] == 's' then
  local err = fence(KEYS[1], ARGV[2], ARGV[3])
  if err then return err end
end
if #ARGV < 4 then return 0 end
return redis.call('XDEL', KEYS[2], unpack(ARGV, 4))`,
});
