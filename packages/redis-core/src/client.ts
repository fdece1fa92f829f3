/** Arguments of a script call, as node-redis takes them. */
export interface ScriptCallOptions {
  keys?: string[];
  arguments?: string[];
}

/**
 * The part of a node-redis client the primitives use, typed structurally so that a v5 or v6
 * client, a cluster, a pool, RESP2 and RESP3 all fit, and no package imports `redis` at run time.
 *
 * @example
 * import { createClient } from 'redis';
 * const client: RedisClientLike = await createClient().connect();
 */
export interface RedisClientLike {
  evalSha(sha1: string, options?: ScriptCallOptions): Promise<unknown>;
  eval(script: string, options?: ScriptCallOptions): Promise<unknown>;
  /** Used once per process to open the subscriber connection that wakes waiters. */
  duplicate(): unknown;
}

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
