import {
  LUA_HELPERS,
  assertName,
  assertPrefix,
  defineScript,
  keyspace,
  scanNames,
  type Describe,
  type DescribeOptions,
  type ListOptions,
  type RedisClientLike,
} from '@x/redis-core';

/** The live state of the events named `name` (each kind has its own keys; any may be absent). */
export interface EventDescription {
  kind: 'event';
  name: string;
  /** Server time of the read, epoch ms. */
  now: number;
  /** The {@link AutoResetEvent}: signals kept for the next waiters, and the queue of waiters. */
  autoReset: { signals: number; waiters: Array<{ token: string; deadline: number; alive: boolean }> } | null;
  /** The {@link ManualResetEvent}: whether it is set, and its generation. */
  manualReset: { set: boolean; generation: string } | null;
  /** The {@link CountDownLatch}: its count (0: open). */
  latch: { count: number } | null;
}

/**
 * KEYS: auto signals, auto queue, auto waiters, manual state, latch state (one hash tag: the name).
 * Reply: {now, auto exists (0|1), live signals, manual exists, set, gen, latch count or -1, waiter token, deadline, ...}.
 */
const describeScript = defineScript({
  name: 'event.describe',
  keys: ['signals', 'queue', 'waiters', 'manual', 'latch'],
  source:
    LUA_HELPERS +
    `
local now = now_ms()
local auto = redis.call('EXISTS', KEYS[1], KEYS[2])
local m = redis.call('HMGET', KEYS[4], 'set', 'gen')
local reply = {int(now), auto, redis.call('ZCOUNT', KEYS[1], '(' .. int(now), '+inf'),
  redis.call('EXISTS', KEYS[4]), tonumber(m[1] or '0'), m[2] or '0',
  tonumber(redis.call('HGET', KEYS[5], 'count') or '-1')}
for _, t in ipairs(redis.call('LRANGE', KEYS[2], 0, 999)) do
  table.insert(reply, t)
  table.insert(reply, redis.call('HGET', KEYS[3], t) or '0')
end
return reply
`,
});

async function describeEvent(client: RedisClientLike, name: string, options: DescribeOptions = {}): Promise<EventDescription | null> {
  const prefix = assertPrefix(options.prefix ?? 'x');
  assertName('name', name);
  const auto = keyspace(prefix, 'auto-event', name);
  const keys = [auto.key('signals'), auto.key('queue'), auto.key('waiters'), keyspace(prefix, 'manual-event', name).key('state'), keyspace(prefix, 'latch', name).key('state')];
  const r = (await describeScript.run(client, keys)) as Array<string | number>;
  const now = Number(r[0]);
  const waiters: Array<{ token: string; deadline: number; alive: boolean }> = [];
  for (let i = 7; i + 1 < r.length; i += 2) {
    const deadline = Number(r[i + 1]);
    waiters.push({ token: String(r[i]), deadline, alive: deadline > now });
  }
  const autoReset = Number(r[1]) > 0 ? { signals: Number(r[2]), waiters } : null;
  const manualReset = Number(r[3]) > 0 ? { set: Number(r[4]) === 1, generation: String(r[5]) } : null;
  const latch = Number(r[6]) >= 0 ? { count: Number(r[6]) } : null;
  if (!autoReset && !manualReset && !latch) return null;
  return { kind: 'event', name, now, autoReset, manualReset, latch };
}

/**
 * The live state of the events named `name` in one round trip: the auto-reset event's kept
 * signals and waiters, whether the manual-reset event is set, the latch's count (each `null`
 * when that kind has no keys), or `null` when none exists. `describe.list` finds the names
 * with `SCAN` on every master. Read-only.
 *
 * @example
 * import { describe } from '@x/event';
 * const ready = await describe(client, 'cache-warm', { prefix: 'x' });
 * console.log(ready?.manualReset?.set ? 'warm' : 'cold');
 */
export const describe: Describe<EventDescription> = Object.assign(describeEvent, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const prefix = options.prefix ?? 'x';
    const found = await Promise.all([
      scanNames(client, prefix, 'auto-event', ['signals', 'queue', 'meta'], { limit: options.limit }),
      scanNames(client, prefix, 'manual-event', ['state'], { limit: options.limit }),
      scanNames(client, prefix, 'latch', ['state'], { limit: options.limit }),
    ]);
    return [...new Set(found.flat())].sort().slice(0, options.limit ?? 1000).map((name) => ({ name }));
  },
});
