import type { IoRedisLike, NodeRedisLike, RedisClientLike, ScriptCallOptions, SubscriberLike } from './client';
import { InvalidArgumentError } from './errors';

/** The clients the seam recognises. */
export type ClientKind =
  | 'node-redis'
  | 'node-redis-cluster'
  | 'node-redis-pool'
  | 'node-redis-sentinel'
  | 'ioredis'
  | 'ioredis-cluster';

/**
 * A connection the library opens for itself (a subscriber, a streams consumer's blocking reads),
 * in node-redis shape whatever the user's client is. Not connected until `connect()`.
 */
export interface OwnConnection extends SubscriberLike {
  xRead(stream: { key: string; id: string }, options: { BLOCK: number; COUNT: number }): Promise<unknown>;
}

/** How the wake-up bus subscribes for a client. */
export interface SubscriberPlan {
  connection: SubscriberLike & { off?(event: string, listener: (...args: any[]) => void): unknown };
  /** The user's client itself subscribes (a node-redis cluster or sentinel): never close it. */
  shared: boolean;
  /** Sharded pub/sub is known to work (`true`), or to be tried first (`undefined`). */
  sharded?: boolean;
}

/**
 * The user's client, recognised once: every call the primitives make, in one shape.
 * `client` is the object the user passed.
 */
export interface AdaptedClient {
  readonly kind: ClientKind;
  readonly client: object;
  evalSha(sha1: string, options: ScriptCallOptions): Promise<unknown>;
  eval(script: string, options: ScriptCallOptions): Promise<unknown>;
  /** The subscriber the wake-up bus uses (opened lazily by the bus). */
  subscriber(): SubscriberPlan;
  /** A new connection of the library's own (blocking reads), not connected yet. */
  duplicate(): OwnConnection;
}

/** Options of {@link configureRedisClient}. */
export interface ConfigureClientOptions {
  /**
   * Opens the connection the library subscribes on (wake-ups of waiters) and reads streams with,
   * not connected yet: e.g. `() => createClient(sameOptions)`. The library connects it, and
   * closes it in {@link closeRedisResources}.
   * @default a `duplicate()` of the client; for a node-redis pool, a `duplicate()` of one of its clients
   */
  subscriber?: () => unknown;
}

const adapted = new WeakMap<object, AdaptedClient>();
const closers = new WeakMap<object, Set<(client: object) => Promise<void>>>();

/**
 * Checks that `client` is one the primitives can use, and throws `InvalidArgumentError` naming
 * what it lacks otherwise. Every primitive's constructor calls it, so a wrong object fails at
 * once, before anything is sent.
 *
 * @example
 * assertClient(client); // in a constructor
 */
export function assertClient(client: unknown): asserts client is RedisClientLike {
  adaptClient(client as RedisClientLike);
}

/**
 * Recognises `client` once (node-redis v5/v6 client, cluster, pool or sentinel; ioredis `Redis`
 * or `Cluster`) and returns it in the shape every primitive uses. The same object is returned for
 * the same client, so per-client state (the wake-up bus, the lease keeper) is shared.
 *
 * @example
 * const seam = adaptClient(ioredis);
 * await seam.evalSha(sha, { keys: ['k'], arguments: ['1'] });
 */
export function adaptClient(client: RedisClientLike): AdaptedClient {
  if (typeof client !== 'object' || client === null) {
    throw new InvalidArgumentError(`client must be a connected node-redis or ioredis client, got ${client === null ? 'null' : typeof client}`);
  }
  const known = adapted.get(client);
  if (known) return known;
  if (isAdapted(client)) return client;
  const seam = recognise(client);
  adapted.set(client, seam);
  return seam;
}

/**
 * Chooses how the library opens its own connection for `client` (a pool whose clients should
 * not be duplicated, a client behind a proxy). Call it before the first primitive uses the client.
 *
 * @example
 * const pool = await createClientPool({ url }).connect();
 * configureRedisClient(pool, { subscriber: () => createClient({ url }) });
 */
export function configureRedisClient(client: RedisClientLike, options: ConfigureClientOptions): void {
  if (options.subscriber !== undefined && typeof options.subscriber !== 'function') {
    throw new InvalidArgumentError('subscriber must be a function that returns a new, unconnected client');
  }
  const base = recognise(client as object);
  const factory = options.subscriber;
  if (!factory) {
    adapted.set(client as object, base);
    return;
  }
  const open = (): OwnConnection => ownConnectionOf(factory());
  adapted.set(client as object, {
    ...base,
    subscriber: () => ({ connection: open(), shared: false }),
    duplicate: open,
  });
}

/**
 * Registers what to release for a client in {@link closeRedisResources} (the wake-up bus, the
 * lease keeper). Internal to the @x packages.
 */
export function onCloseResources(client: object, close: (client: object) => Promise<void>): void {
  let set = closers.get(client);
  if (!set) closers.set(client, (set = new Set()));
  set.add(close);
}

/**
 * Releases what the library opened for `client` in this process: the subscriber connection that
 * wakes waiters, and the lease keeper (leases still held stop being renewed and their handles'
 * `signal`s abort). Call it before closing the client; the client itself is left open. For an
 * ioredis client, `quit()`/`disconnect()` does it too.
 *
 * @example
 * await closeRedisResources(client);
 * await client.close();
 */
export async function closeRedisResources(client: RedisClientLike): Promise<void> {
  const set = closers.get(client as object);
  if (!set) return;
  closers.delete(client as object);
  for (const close of set) await close(client as object).catch(() => undefined);
}

function isAdapted(value: object): value is AdaptedClient {
  return typeof (value as Partial<AdaptedClient>).subscriber === 'function' && typeof (value as Partial<AdaptedClient>).kind === 'string' && 'client' in value;
}

function recognise(client: object): AdaptedClient {
  const c = client as Record<string, unknown>;
  if (typeof c.evalSha === 'function' && typeof c.eval === 'function') return nodeRedis(client as NodeRedisLike & Record<string, unknown>);
  if (typeof c.evalsha === 'function' && typeof c.eval === 'function') {
    if (typeof c.duplicate !== 'function') throw new InvalidArgumentError('client looks like ioredis but has no duplicate() method (needed for the subscriber connection)');
    return ioredis(client as IoRedisLike & Record<string, unknown>);
  }
  const what = c.constructor && typeof c.constructor === 'function' && c.constructor !== Object ? ` (a ${c.constructor.name})` : '';
  throw new InvalidArgumentError(
    `client${what} must be a node-redis client, cluster, pool or sentinel, or an ioredis Redis or Cluster: it has neither evalSha() (node-redis) nor evalsha() (ioredis)`,
  );
}

function nodeRedis(client: NodeRedisLike & Record<string, unknown>): AdaptedClient {
  const base = {
    client,
    evalSha: (sha1: string, options: ScriptCallOptions) => client.evalSha(sha1, options),
    eval: (script: string, options: ScriptCallOptions) => client.eval(script, options),
  };
  if ('masters' in client && typeof client.sSubscribe === 'function' && typeof client.duplicate === 'function') {
    // A node-redis cluster keeps sharded pub/sub on connections of its own, one per shard.
    const duplicate = () => ownConnectionOf((client.duplicate as () => unknown)());
    return { ...base, kind: 'node-redis-cluster', subscriber: () => ({ connection: client as unknown as SubscriberLike, shared: true, sharded: true }), duplicate };
  }
  if (typeof client.getMasterNode === 'function' && typeof client.acquire === 'function' && typeof client.subscribe === 'function') {
    // A sentinel keeps a pub/sub connection of its own that follows the master on failover.
    const duplicate = (): OwnConnection =>
      typeof client.duplicate === 'function'
        ? ownConnectionOf((client.duplicate as () => unknown)())
        : lazyConnection(async () => {
            // v5 has no duplicate(): a lease reserves one of its master connections.
            const lease = (await (client.acquire as () => Promise<Record<string, unknown>>)()) as Record<string, any>;
            return {
              connect: async () => undefined,
              on: () => undefined,
              subscribe: async () => undefined,
              unsubscribe: async () => undefined,
              xRead: (stream: unknown, options: unknown) => lease.xRead(stream, options),
              destroy: () => void Promise.resolve(lease.release()).catch(() => undefined),
            } as unknown as OwnConnection;
          });
    return { ...base, kind: 'node-redis-sentinel', subscriber: () => ({ connection: client as unknown as SubscriberLike, shared: true }), duplicate };
  }
  if (typeof client.duplicate === 'function') {
    const duplicate = () => ownConnectionOf((client.duplicate as () => unknown)());
    return { ...base, kind: 'node-redis', subscriber: () => ({ connection: duplicate(), shared: false }), duplicate };
  }
  if (typeof client.execute === 'function' && 'idleClients' in client) {
    // A pool has no duplicate(): one of its own clients gives the pool's client options.
    const duplicate = (): OwnConnection =>
      lazyConnection(async () => {
        const own = await (client.execute as (fn: (member: { duplicate(): unknown }) => unknown) => Promise<unknown>)(async (member) => member.duplicate());
        const connection = ownConnectionOf(own);
        return connection;
      });
    return { ...base, kind: 'node-redis-pool', subscriber: () => ({ connection: duplicate(), shared: false }), duplicate };
  }
  throw new InvalidArgumentError(
    'client has evalSha() but no duplicate(), and is not a node-redis pool or sentinel: pass a subscriber factory with configureRedisClient(client, { subscriber })',
  );
}

/** A node-redis connection as it comes (a duplicate, a user's factory); ioredis ones are wrapped. */
function ownConnectionOf(connection: unknown): OwnConnection {
  const c = connection as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null || typeof c.on !== 'function') {
    throw new InvalidArgumentError('subscriber factory must return a client (node-redis or ioredis)');
  }
  if (typeof c.evalsha === 'function' && typeof c.evalSha !== 'function') return new IoConnection(c as unknown as IoRedisInstance);
  return c as unknown as OwnConnection;
}

/** An ioredis `Redis` or `Cluster`, as far as this file calls it. */
interface IoRedisInstance {
  isCluster?: boolean;
  status?: string;
  options?: Record<string, unknown>;
  evalsha(sha1: string, numkeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numkeys: number, ...args: string[]): Promise<unknown>;
  duplicate(...args: unknown[]): IoRedisInstance;
  connect(): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  xread(...args: (string | number)[]): Promise<unknown>;
  disconnect(): void;
  quit(): Promise<unknown>;
}

function ioredis(client: IoRedisLike & Record<string, unknown>): AdaptedClient {
  const io = client as unknown as IoRedisInstance;
  const cluster = io.isCluster === true;
  const call = (method: 'evalsha' | 'eval') => (first: string, options: ScriptCallOptions) => {
    const keys = options.keys ?? [];
    return io[method](first, keys.length, ...keys, ...(options.arguments ?? []));
  };
  const duplicate = (): OwnConnection =>
    new IoConnection(
      cluster
        ? // A Cluster subscribes with sharded pub/sub only through its sharded subscriber group,
          // one connection per shard; the user's own may have it off (the default).
          io.duplicate([], { lazyConnect: true, shardedSubscribers: true })
        : io.duplicate({ lazyConnect: true }),
    );
  const seam: AdaptedClient = {
    kind: cluster ? 'ioredis-cluster' : 'ioredis',
    client,
    evalSha: call('evalsha'),
    eval: call('eval'),
    subscriber: () => ({ connection: duplicate(), shared: false, ...(cluster ? { sharded: true } : {}) }),
    duplicate,
  };
  // ioredis says when the client is done for good ('end': quit, disconnect, no more retries).
  io.once('end', () => void closeRedisResources(client));
  return seam;
}

/** An ioredis connection of our own, in node-redis shape. */
class IoConnection implements OwnConnection {
  readonly #io: IoRedisInstance;
  readonly #listeners = { s: new Map<string, Set<(message: string, channel: string) => void>>(), p: new Map<string, Set<(message: string, channel: string) => void>>() };

  constructor(io: IoRedisInstance) {
    this.#io = io;
    io.on('smessage', (channel: string, message: string) => this.#dispatch('s', message, channel));
    io.on('message', (channel: string, message: string) => this.#dispatch('p', message, channel));
  }

  #dispatch(kind: 's' | 'p', message: string, channel: string): void {
    for (const listener of [...(this.#listeners[kind].get(channel) ?? [])]) listener(message, channel);
  }

  async connect(): Promise<unknown> {
    if (this.#io.status === 'wait' || this.#io.status === undefined) return this.#io.connect();
    if (this.#io.status === 'ready') return undefined;
    return new Promise((resolve, reject) => {
      this.#io.once('ready', resolve);
      this.#io.once('end', () => reject(new Error('connection closed before it was ready')));
    });
  }

  on(event: string, listener: (...args: any[]) => void): unknown {
    return this.#io.on(event, listener);
  }

  async #add(kind: 's' | 'p', channel: string, listener: (message: string, channel: string) => void): Promise<void> {
    const map = this.#listeners[kind];
    let set = map.get(channel);
    const first = !set;
    if (!set) map.set(channel, (set = new Set()));
    set.add(listener);
    if (!first) return;
    try {
      await (kind === 's' ? this.#io.ssubscribe(channel) : this.#io.subscribe(channel));
    } catch (error) {
      map.delete(channel);
      throw error;
    }
  }

  async #remove(kind: 's' | 'p', channel: string, listener?: (message: string, channel: string) => void): Promise<void> {
    const map = this.#listeners[kind];
    const set = map.get(channel);
    if (!set) return;
    if (listener) set.delete(listener);
    else set.clear();
    if (set.size > 0) return;
    map.delete(channel);
    await (kind === 's' ? this.#io.sunsubscribe(channel) : this.#io.unsubscribe(channel));
  }

  sSubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown> {
    return this.#add('s', channel, listener);
  }

  sUnsubscribe(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown> {
    return this.#remove('s', channel, listener);
  }

  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown> {
    return this.#add('p', channel, listener);
  }

  unsubscribe(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown> {
    return this.#remove('p', channel, listener);
  }

  xRead(stream: { key: string; id: string }, options: { BLOCK: number; COUNT: number }): Promise<unknown> {
    return this.#io.xread('COUNT', options.COUNT, 'BLOCK', options.BLOCK, 'STREAMS', stream.key, stream.id);
  }

  destroy(): void {
    this.#io.disconnect();
  }

  close(): Promise<unknown> {
    return this.#io.quit();
  }
}

/**
 * A connection that is opened asynchronously (from a pool, from a sentinel lease), usable at once:
 * listeners attached before `connect()` are attached to it when it exists.
 */
function lazyConnection(open: () => Promise<OwnConnection>): OwnConnection {
  let inner: OwnConnection | undefined;
  let destroyed = false;
  const pending: Array<[string, (...args: any[]) => void]> = [];
  const need = (): OwnConnection => {
    if (!inner) throw new Error('connection is not connected');
    return inner;
  };
  return {
    async connect() {
      const connection = await open();
      for (const [event, listener] of pending) connection.on(event, listener);
      inner = connection;
      await connection.connect();
      if (destroyed) connection.destroy?.();
      return connection;
    },
    on(event, listener) {
      if (inner) inner.on(event, listener);
      else pending.push([event, listener]);
      return this;
    },
    sSubscribe: (channel, listener) => {
      const c = need();
      return c.sSubscribe ? c.sSubscribe(channel, listener) : Promise.reject(new Error('unknown command SSUBSCRIBE'));
    },
    sUnsubscribe: (channel, listener) => need().sUnsubscribe?.(channel, listener) ?? Promise.resolve(),
    subscribe: (channel, listener) => need().subscribe(channel, listener),
    unsubscribe: (channel, listener) => need().unsubscribe(channel, listener),
    xRead: (stream, options) => need().xRead(stream, options),
    unref: () => inner?.unref?.(),
    destroy: () => {
      destroyed = true;
      if (!inner) return;
      if (typeof inner.destroy === 'function') inner.destroy();
      else void Promise.resolve(inner.close?.()).catch(() => undefined);
    },
    close: async () => {
      destroyed = true;
      return inner?.close ? inner.close() : inner?.destroy?.();
    },
  };
}
