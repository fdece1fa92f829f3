/** Arguments of a script call, as node-redis takes them. */
export interface ScriptCallOptions {
  keys?: string[];
  arguments?: string[];
}

/**
 * The part of a node-redis client the primitives use, typed structurally so that a v5 or v6
 * client, cluster, pool or sentinel, RESP2 and RESP3 all fit, and no package imports `redis` at
 * run time. A pool and a v5 sentinel have no `duplicate()`: the seam opens the library's own
 * connection another way (see `configureRedisClient`).
 */
export interface NodeRedisLike {
  evalSha(sha1: string, options?: ScriptCallOptions): Promise<unknown>;
  eval(script: string, options?: ScriptCallOptions): Promise<unknown>;
  /** Used once per process to open the subscriber connection that wakes waiters. */
  duplicate?(): unknown;
}

/**
 * The part of an ioredis `Redis` or `Cluster` the primitives use, typed structurally: ioredis is
 * never imported.
 */
export interface IoRedisLike {
  evalsha(sha1: string, numkeys: number | string, ...args: Array<string | number>): Promise<unknown>;
  /** Used once per process to open the subscriber connection that wakes waiters. */
  duplicate(...args: any[]): unknown;
  readonly isCluster: boolean;
}

/**
 * Any client the primitives take: a node-redis client, cluster, pool or sentinel (v5 or v6,
 * RESP2 or RESP3), or an ioredis `Redis` or `Cluster`. Each is recognised and adapted once, by
 * `adaptClient`.
 *
 * @example
 * import { createClient } from 'redis';
 * const client: RedisClientLike = await createClient().connect();
 * // or: const client: RedisClientLike = new Redis(); // ioredis
 */
export type RedisClientLike = NodeRedisLike | IoRedisLike;

/** The subscriber side: what the wake-up bus calls on `client.duplicate()`. */
export interface SubscriberLike {
  connect(): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  sSubscribe?(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  sUnsubscribe?(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown>;
  unref?(): void;
  destroy?(): unknown;
  close?(): unknown;
}
