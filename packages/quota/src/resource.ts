import { keyspace } from '@x/redis-core';
import { COMMON_KEYS } from './lua';

/** The keys of one quota resource: all inside one hash tag, so every script works on Cluster. */
export interface ResourceKeys {
  /** The keys every script takes first (see `COMMON_KEYS`). */
  readonly common: readonly string[];
  /** `common` plus a record key that the script leaves alone (no idempotency key was given). */
  readonly withoutRecord: readonly string[];
  /** The record of an idempotency key of `tryConsume` / `topUp`. */
  idempotency(key: string): string;
  /** The record of a chunk operation id (`consumeChunk`, the local consumer's syncs). */
  operation(id: string): string;
}

/**
 * Builds the keys of `resource` under `prefix`: `<prefix>:quota:{<resource>}:<suffix>`.
 *
 * @example
 * resourceKeys('x', 'wallet:1').common[0]; // 'x:quota:{wallet:1}:state'
 */
export function resourceKeys(prefix: string, resource: string): ResourceKeys {
  const ks = keyspace(prefix, 'quota', resource);
  const common = COMMON_KEYS.map((suffix) => ks.key(suffix));
  return {
    common,
    withoutRecord: [...common, ks.key('idem:')],
    idempotency: (key) => ks.key(`idem:${key}`),
    operation: (id) => ks.key(`op:${id}`),
  };
}
