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

/** A leased keyed queue's live state, as an operator sees it (values are not shown). */
export interface QueueDescription {
  kind: 'leasedkeyq';
  name: string;
  /** Server time of the read, epoch ms. */
  now: number;
  /** Items ready to be leased (expired leases included: the next call puts them back first). */
  ready: number;
  /** Items under a live lease. */
  inFlight: number;
  /** Getters blocked on the queue right now. */
  waiters: number;
  /** The keys at the front of the queue (up to 20), in order. */
  head: string[];
  /** Up to 20 live leases: key, fence and expiry (server epoch ms; null: no timeout). */
  leases: Array<{ key: string; fence: number; expiresAt: number | null }>;
}

const SHOWN = 20;

/**
 * KEYS: avail, leases, exp, waiters. Reply: {now, exists, ready, leases, expired, waiters, #head,
 * head keys ..., (key, fence, expiresAt or '') ...}.
 */
const describeScript = defineScript({
  name: 'leasedkeyq.describe',
  keys: ['avail', 'leases', 'exp', 'waiters'],
  source:
    LUA_HELPERS +
    `
local now = now_ms()
local head = redis.call('ZRANGE', KEYS[1], 0, ${SHOWN - 1})
local expired = redis.call('ZCOUNT', KEYS[3], '-inf', now)
local reply = {int(now), redis.call('EXISTS', KEYS[1], KEYS[2]), redis.call('ZCARD', KEYS[1]), redis.call('HLEN', KEYS[2]), expired,
  redis.call('ZCOUNT', KEYS[4], now, '+inf'), #head}
for _, k in ipairs(head) do table.insert(reply, k) end
local scan = redis.call('HSCAN', KEYS[2], 0, 'COUNT', ${SHOWN * 2})
local shown = 0
for i = 1, #scan[2], 2 do
  if shown >= ${SHOWN} then break end
  local token, fence, exp = string.match(scan[2][i + 1], '^(%S+) (%d+) (%S+)')
  if fence and (exp == '-' or tonumber(exp) > now) then
    table.insert(reply, scan[2][i])
    table.insert(reply, fence)
    if exp == '-' then table.insert(reply, '') else table.insert(reply, exp) end
    shown = shown + 1
  end
end
return reply
`,
});

async function describeQueue(client: RedisClientLike, name: string, options: DescribeOptions = {}): Promise<QueueDescription | null> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'leasedkeyq', assertName('name', name));
  const r = (await describeScript.run(client, [ks.key('avail'), ks.key('leases'), ks.key('exp'), ks.key('waiters')])) as Array<string | number>;
  const now = Number(r[0]);
  if (Number(r[1]) === 0) return null;
  const expired = Number(r[4]);
  const count = Number(r[6]);
  const head = r.slice(7, 7 + count).map(String);
  const leases: QueueDescription['leases'] = [];
  for (let i = 7 + count; i + 2 < r.length; i += 3) {
    leases.push({ key: String(r[i]), fence: Number(r[i + 1]), expiresAt: r[i + 2] === '' ? null : Number(r[i + 2]) });
  }
  return { kind: 'leasedkeyq', name, now, ready: Number(r[2]) + expired, inFlight: Number(r[3]) - expired, waiters: Number(r[5]), head, leases };
}

/**
 * The live state of the queue `name` in one round trip (ready, in flight, blocked getters, the
 * front keys, live leases), or `null` when it holds nothing; `describe.list` finds the queues
 * under a prefix with `SCAN` on every master. Read-only; item values are not returned.
 *
 * @example
 * import { describe } from '@x/leasedkeyq';
 * const jobs = await describe(client, 'jobs', { prefix: 'x' });
 * console.log(jobs?.ready, 'ready,', jobs?.inFlight, 'in flight');
 */
export const describe: Describe<QueueDescription> = Object.assign(describeQueue, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const names = await scanNames(client, options.prefix ?? 'x', 'leasedkeyq', ['avail', 'leases'], { limit: options.limit });
    return names.map((name) => ({ name }));
  },
});
