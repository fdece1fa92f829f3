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

/** An idempotency key's live record, as an operator sees it (the stored value itself is not shown). */
export interface IdempotencyDescription {
  kind: 'idempotency';
  name: string;
  /** Server time of the read, epoch ms. */
  now: number;
  /** `in_progress` while a claim's lease runs, `expired` once it ran out (claimable again). */
  state: 'in_progress' | 'expired' | 'completed' | 'failed';
  /** Whether the first request carried a fingerprint. */
  fingerprinted: boolean;
  /** End of the claim's lease (server epoch ms) while in progress, else null. */
  leaseUntil: number | null;
  /** Size of the stored result or error, in bytes. */
  valueBytes: number;
  /** When the record is forgotten (server epoch ms), or null when it never expires. */
  expiresAt: number | null;
}

/** KEYS: record. Reply: {now, state or '', fp or '', until or '', value bytes, pttl}. */
const describeScript = defineScript({
  name: 'idempotency.describe',
  keys: ['record'],
  source:
    LUA_HELPERS +
    `
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'until')
return {int(now_ms()), r[1] or '', r[2] or '', r[3] or '', redis.call('HSTRLEN', KEYS[1], 'value'), redis.call('PTTL', KEYS[1])}
`,
});

async function describeKey(client: RedisClientLike, name: string, options: DescribeOptions = {}): Promise<IdempotencyDescription | null> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'idempotency', assertName('name', name));
  const [now, state, fp, until, bytes, pttl] = (await describeScript.run(client, [ks.key('record')])) as [string, string, string, string, number, number];
  if (state === '') return null;
  const nowMs = Number(now);
  const leaseUntil = state === 'in_progress' && until !== '' ? Number(until) : null;
  return {
    kind: 'idempotency',
    name,
    now: nowMs,
    state: state === 'in_progress' && leaseUntil !== null && leaseUntil <= nowMs ? 'expired' : (state as IdempotencyDescription['state']),
    fingerprinted: fp !== '',
    leaseUntil,
    valueBytes: Number(bytes),
    expiresAt: Number(pttl) >= 0 ? nowMs + Number(pttl) : null,
  };
}

/**
 * The live record of the idempotency key `name` in one round trip (state, lease, size, expiry),
 * or `null` when there is none; `describe.list` finds the keys under a prefix with `SCAN` on
 * every master. Read-only; the stored value is never returned (it may hold personal data).
 *
 * @example
 * import { describe } from '@x/idempotency';
 * const rec = await describe(client, 'order-7', { prefix: 'x' });
 * if (rec?.state === 'in_progress') console.log('running until', new Date(rec.leaseUntil!));
 */
export const describe: Describe<IdempotencyDescription> = Object.assign(describeKey, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const names = await scanNames(client, options.prefix ?? 'x', 'idempotency', ['record'], { limit: options.limit });
    return names.map((name) => ({ name }));
  },
});
