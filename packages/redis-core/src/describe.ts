import type { RedisClientLike } from './client';
import { InvalidArgumentError } from './errors';
import { GRANT_QUEUE_LUA, RELEASE_LUA } from './grant-queue-lua';
import type { Keyspace } from './keyspace';
import { defineScript, normalizeReply } from './script';
import { assertPrefix } from './validate';

/** Options every primitive's `describe` takes. */
export interface DescribeOptions {
  /**
   * Prefix of the resources' keys.
   * @default 'x'
   */
  prefix?: string;
}

/** Options of a listing. */
export interface ListOptions extends DescribeOptions {
  /**
   * Stop after this many distinct resources (1 to 100 000), so a huge keyspace cannot flood a page.
   * @default 1000
   */
  limit?: number;
}

/**
 * A primitive's describer: `describe(client, name, options)` is one resource's live state in one
 * round trip (or `null` when the resource holds nothing), `describe.list(client, options)` finds
 * the resources of its kind with `SCAN` on every master. The meaning of the keys stays with the
 * package that writes them; `@x/inspect` only composes describers.
 *
 * @example
 * import { describe } from '@x/lock';
 * for (const { name } of await describe.list(client, { prefix: 'x' })) {
 *   console.log(name, await describe(client, name, { prefix: 'x' }));
 * }
 */
export interface Describe<State, Ref extends { name: string } = { name: string }, Options extends DescribeOptions = DescribeOptions> {
  (client: RedisClientLike, name: string, options?: Options): Promise<State | null>;
  /** The resources of this kind under the prefix, sorted by name. */
  list(client: RedisClientLike, options?: ListOptions): Promise<Ref[]>;
}

const MAX_LIMIT = 100_000;

/**
 * Every key matching `pattern` (a SCAN glob), from every master: a node-redis client, pool or
 * sentinel (`sendCommand`), a node-redis cluster (`masters` + `nodeClient`), or ioredis
 * (`call`, and `nodes('master')` for a cluster). Never `KEYS`. Stops once `limit` keys are found.
 *
 * @example
 * const keys = await scanKeys(client, 'x:lock:{*}:holders', 1000);
 */
export async function scanKeys(client: RedisClientLike, pattern: string, limit = 10_000): Promise<string[]> {
  const found = new Set<string>();
  for (const node of await masters(client)) {
    let cursor = '0';
    do {
      const reply = normalizeReply(await node(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
      cursor = String(reply[0]);
      for (const key of reply[1]) found.add(key);
      if (found.size >= limit) return [...found];
    } while (cursor !== '0');
  }
  return [...found];
}

/**
 * The names of the resources of `primitive` under `prefix` that have a key ending in one of
 * `suffixes`, from `SCAN` on every master, unescaped and sorted.
 *
 * @example
 * await scanNames(client, 'x', 'lock', ['holders', 'queue']); // ['orders', 'payments']
 */
export async function scanNames(
  client: RedisClientLike,
  prefix: string,
  primitive: string,
  suffixes: readonly string[],
  options: { limit?: number } = {},
): Promise<string[]> {
  const limit = assertLimit(options.limit ?? 1000);
  assertPrefix(prefix);
  const head = `${prefix}:${primitive}:{`;
  const names = new Set<string>();
  for (const suffix of suffixes) {
    for (const key of await scanKeys(client, `${globEscape(head)}*}:${globEscape(suffix)}`, limit * 4)) {
      const name = nameOfKey(head, key);
      // The glob's `*` may also span a `}`: keep only keys whose tag is followed by the suffix.
      if (name !== null && key.slice(key.indexOf('}', head.length)) === `}:${suffix}`) names.add(name);
    }
  }
  return [...names].sort().slice(0, limit);
}

/**
 * The resource name inside the hash tag of `key`, unescaped, when `key` starts with `head`
 * (`<prefix>:<primitive>:{`); `null` otherwise.
 *
 * @example
 * nameOfKey('x:lock:{', 'x:lock:{a%7Db}:holders'); // 'a}b'
 */
export function nameOfKey(head: string, key: string): string | null {
  if (!key.startsWith(head)) return null;
  const end = key.indexOf('}', head.length);
  if (end < 0) return null;
  return unescapeTag(key.slice(head.length, end));
}

function unescapeTag(tag: string): string {
  return tag.replace(/%(25|7B|7D)/g, (_, code: string) => (code === '25' ? '%' : code === '7B' ? '{' : '}'));
}

/** Escapes the glob characters of SCAN MATCH. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function assertLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new InvalidArgumentError(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  }
  return limit;
}

type Send = (args: string[]) => Promise<unknown>;

async function masters(client: RedisClientLike): Promise<Send[]> {
  const c = client as unknown as Record<string, any>;
  // node-redis cluster: one client per master.
  if (Array.isArray(c.masters) && typeof c.nodeClient === 'function') {
    const nodes = await Promise.all(c.masters.map((m: unknown) => c.nodeClient(m)));
    return nodes.map((n: any) => (args: string[]) => n.sendCommand(args));
  }
  // ioredis cluster.
  if (typeof c.nodes === 'function' && typeof c.call === 'function') {
    return (c.nodes('master') as any[]).map((n) => (args: string[]) => n.call(...args));
  }
  if (typeof c.sendCommand === 'function') return [(args) => c.sendCommand(args)];
  if (typeof c.call === 'function') return [(args) => c.call(...args)];
  throw new InvalidArgumentError('the client can send no SCAN (need a node-redis or ioredis client or cluster)');
}

/** A holder of a lock or semaphore, as `describe` reports it. */
export interface DescribedHolder {
  token: string;
  permits: number;
  fence: number;
  /** Lease expiry, server epoch ms. */
  expiresAt: number;
}

/** A queued waiter of a lock or semaphore. */
export interface DescribedWaiter {
  token: string;
  permits: number;
  /** The waiter's own lease (renewed by its re-checks), server epoch ms. */
  deadline: number;
  /** False once that lease ran out: the process died in the queue, and the next grant skips it. */
  alive: boolean;
}

/** The live state of a grant queue (a lock, a semaphore). */
export interface GrantQueueState {
  /** Server time of the read, epoch ms: count every time of the state from it. */
  now: number;
  /** Permits of the resource (1 for a lock), or null when no limit is set. */
  limit: number | null;
  /** Permits held by live holders. */
  used: number;
  /** The last fence handed out, or null when it expired with the keys. */
  fence: number | null;
  holders: DescribedHolder[];
  /** In queue order, dead ones included. */
  waiters: DescribedWaiter[];
}

const GQ_KEYS = ['holders', 'grants', 'queue', 'waiters', 'meta', 'config'] as const;

/**
 * Reply: {now, limit or -1, fence or '', #holders, holder fields x4 ..., waiter fields x3 ...}.
 * Reads only; what an expired holder left behind is shown as gone, as the next script will find it.
 */
const describeScript = defineScript({
  name: 'grant-queue.describe',
  keys: GQ_KEYS,
  source:
    GRANT_QUEUE_LUA +
    `
local limit = gq_limit(ARGV[1]) or -1
local now = now_ms()
local reply = {int(now), limit, redis.call('HGET', M, 'fence') or ''}
local holders = redis.call('ZRANGEBYSCORE', H, '(' .. int(now), '+inf', 'WITHSCORES')
table.insert(reply, #holders / 2)
for i = 1, #holders, 2 do
  local g = redis.call('HGET', G, holders[i]) or '0|0'
  local p, f = string.match(g, '^(%d+)|(%d+)$')
  table.insert(reply, holders[i])
  table.insert(reply, tonumber(p))
  table.insert(reply, f)
  table.insert(reply, int(tonumber(holders[i + 1])))
end
for _, t in ipairs(redis.call('LRANGE', Q, 0, 999)) do
  local w = redis.call('HGET', W, t)
  local d, p = 0, 0
  if w then d, p = string.match(w, '^(%d+)|(%d+)|') end
  table.insert(reply, t)
  table.insert(reply, tonumber(p))
  table.insert(reply, d)
end
return reply
`,
});

/**
 * A dead waiter leaves the queue, and the permits it blocked go to the next live waiters.
 * ARGV: token, limit ('' reads config), channel. Reply: 1, or WAITER_ALIVE / WAITER_NOT_FOUND.
 */
const dropWaiterScript = defineScript({
  name: 'grant-queue.drop-waiter',
  keys: GQ_KEYS,
  source:
    GRANT_QUEUE_LUA +
    `
local token, channel = ARGV[1], ARGV[3]
local limit = gq_limit(ARGV[2])
local now = now_ms()
local deadline = gq_waiter(token)
if not deadline then
  if redis.call('LPOS', Q, token) then deadline = 0
  else return redis.error_reply('WAITER_NOT_FOUND no waiter with that token') end
end
if deadline > now then return redis.error_reply('WAITER_ALIVE the waiter renewed its lease; it is not dead') end
redis.call('LREM', Q, 0, token)
redis.call('HDEL', W, token)
gq_reclaim(now)
if limit then gq_promote(limit, now, channel) end
return 1
`,
});

const releaseScript = defineScript({ name: 'grant-queue.release-token', keys: GQ_KEYS, source: RELEASE_LUA });

/**
 * The live state of a lock's or a semaphore's queue (`limit`: 1 for a lock, `null` to read the
 * semaphore's config), or `null` when nothing is held, queued or configured.
 *
 * @example
 * const state = await describeGrantQueue(client, keyspace('x', 'lock', 'orders'), 1);
 */
export async function describeGrantQueue(client: RedisClientLike, ks: Keyspace, limit: number | null): Promise<GrantQueueState | null> {
  const r = (await describeScript.run(client, GQ_KEYS.map((s) => ks.key(s)), [limit === null ? '' : limit])) as Array<string | number>;
  const now = Number(r[0]);
  const count = Number(r[3]);
  const holders: DescribedHolder[] = [];
  let i = 4;
  for (let h = 0; h < count; h++, i += 4) {
    holders.push({ token: String(r[i]), permits: Number(r[i + 1]), fence: Number(r[i + 2]), expiresAt: Number(r[i + 3]) });
  }
  const waiters: DescribedWaiter[] = [];
  for (; i + 2 < r.length; i += 3) {
    const deadline = Number(r[i + 2]);
    waiters.push({ token: String(r[i]), permits: Number(r[i + 1]), deadline, alive: deadline > now });
  }
  const limitInForce = Number(r[1]) < 0 ? null : Number(r[1]);
  if (holders.length === 0 && waiters.length === 0 && (limit !== null || limitInForce === null) && r[2] === '') return null;
  return {
    now,
    limit: limitInForce,
    used: holders.reduce((sum, h) => sum + h.permits, 0),
    fence: r[2] === '' ? null : Number(r[2]),
    holders,
    waiters,
  };
}

/**
 * Releases the grant held under `token`, as its holder would (an operator's action: the holder's
 * next renewal fails and its signal aborts). The fence still rises with the next grant. Returns
 * how many waiters were handed permits; throws `XRedisError` `NOT_HELD` when the token holds nothing.
 *
 * @example
 * await releaseGrantByToken(client, keyspace('x', 'lock', 'orders'), 1, token);
 */
export async function releaseGrantByToken(client: RedisClientLike, ks: Keyspace, limit: number | null, token: string): Promise<number> {
  assertToken(token);
  return Number(await releaseScript.run(client, GQ_KEYS.map((s) => ks.key(s)), [token, limit === null ? '' : limit, ks.channel]));
}

/**
 * Removes a waiter whose own lease ran out (its process died in the queue) and hands what it
 * blocked to the live waiters behind it. Throws `XRedisError` `WAITER_ALIVE` for a live waiter,
 * `WAITER_NOT_FOUND` for an unknown token.
 *
 * @example
 * await dropDeadWaiter(client, keyspace('x', 'semaphore', 'db'), null, token);
 */
export async function dropDeadWaiter(client: RedisClientLike, ks: Keyspace, limit: number | null, token: string): Promise<void> {
  assertToken(token);
  await dropWaiterScript.run(client, GQ_KEYS.map((s) => ks.key(s)), [token, limit === null ? '' : limit, ks.channel]);
}

function assertToken(token: string): void {
  if (typeof token !== 'string' || token.length === 0 || token.length > 200) {
    throw new InvalidArgumentError('token must be a non-empty string of at most 200 characters');
  }
}
