import {
  LUA_HELPERS,
  assertName,
  assertPrefix,
  defineScript,
  scanNames,
  type Describe,
  type DescribeOptions,
  type ListOptions,
  type RedisClientLike,
} from '@x/redis-core';
import { resourceKeys } from './resource';

/** A quota resource's live state, as an operator sees it. */
export interface QuotaDescription {
  kind: 'quota';
  name: string;
  /** Server time of the read, epoch ms. */
  now: number;
  /** What can be consumed right now, counting expired holds and leases as given back. */
  available: number;
  /** Held by live reservations. */
  reserved: number;
  /** Left in live chunk leases. */
  leased: number;
  consumed: number;
  supplied: number;
  /** Live reservations and chunk leases. */
  holds: number;
  leases: number;
  /** The earliest expiry of a live reservation or lease (server epoch ms), or null. */
  nextExpiry: number | null;
}

const MAX = 1000;

/**
 * KEYS: the quota's common keys (state, holds, holds:expiry, leases, leases:expiry, ...).
 * Reply: {now, exists, available, reserved, leased, consumed, supplied, live holds, live leases,
 * expired held amount, expired leased remainder, next expiry or ''}. Reads only: the amounts of
 * expired holds and leases (up to 1000 of each) are counted as the next script will reclaim them.
 */
const describeScript = defineScript({
  name: 'quota.describe',
  keys: ['state', 'holds', 'holds:expiry', 'leases', 'leases:expiry', 'receipts', 'receipts:expiry'],
  source:
    LUA_HELPERS +
    `
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'available', 'reserved', 'leased', 'consumed', 'supplied')
local function n(v) return tonumber(v or '0') or 0 end
local held, left = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, ${MAX})) do
  local h = redis.call('HGET', KEYS[2], id)
  if h then held = held + (tonumber(string.match(h, '^(%d+)')) or 0) end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, ${MAX})) do
  local l = redis.call('HGET', KEYS[4], id)
  if l then left = left + (tonumber(string.match(l, '^%d+|(%d+)')) or 0) end
end
local nexts = {}
for _, k in ipairs({KEYS[3], KEYS[5]}) do
  local first = redis.call('ZRANGEBYSCORE', k, '(' .. int(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if first[2] then table.insert(nexts, tonumber(first[2])) end
end
local nextExp = ''
if #nexts > 0 then nextExp = int(math.min(unpack(nexts))) end
return {int(now), redis.call('EXISTS', KEYS[1]), int(n(s[1])), int(n(s[2])), int(n(s[3])), int(n(s[4])), int(n(s[5])),
  redis.call('ZCOUNT', KEYS[3], '(' .. int(now), '+inf'), redis.call('ZCOUNT', KEYS[5], '(' .. int(now), '+inf'),
  int(held), int(left), nextExp}
`,
});

async function describeQuota(client: RedisClientLike, name: string, options: DescribeOptions = {}): Promise<QuotaDescription | null> {
  const keys = resourceKeys(assertPrefix(options.prefix ?? 'x'), assertName('name', name));
  const r = ((await describeScript.run(client, keys.common)) as Array<string | number>).map((v) => (v === '' ? null : Number(v)));
  const [now, exists, available, reserved, leased, consumed, supplied, holds, leases, expiredHeld, expiredLeft, nextExpiry] = r as number[];
  if (!exists) return null;
  return {
    kind: 'quota',
    name,
    now: now!,
    available: available! + expiredHeld! + expiredLeft!,
    reserved: reserved! - expiredHeld!,
    leased: leased! - expiredLeft!,
    consumed: consumed!,
    supplied: supplied!,
    holds: holds!,
    leases: leases!,
    nextExpiry: nextExpiry ?? null,
  };
}

/**
 * The live state of the quota resource `name` in one round trip (available, reserved, leased,
 * consumed, supplied; live reservations and chunk leases), or `null` when it does not exist;
 * `describe.list` finds the resources under a prefix with `SCAN` on every master. Read-only.
 *
 * @example
 * import { describe } from '@x/quota';
 * const wallet = await describe(client, 'wallet:123', { prefix: 'x' });
 * console.log(wallet?.available, 'left');
 */
export const describe: Describe<QuotaDescription> = Object.assign(describeQuota, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const names = await scanNames(client, options.prefix ?? 'x', 'quota', ['state'], { limit: options.limit });
    return names.map((name) => ({ name }));
  },
});
