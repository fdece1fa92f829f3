import { assertName, assertPrefix } from './validate';

/** The keys and wake-up channel of one resource, all inside one hash tag. */
export interface Keyspace {
  /** The hash-tagged base, e.g. `x:lock:{orders}`. */
  readonly base: string;
  /** A key of this resource: `key('state')` is `x:lock:{orders}:state`. */
  key(suffix: string): string;
  /** The wake-up channel of this resource (same slot as its keys). */
  readonly channel: string;
}

/**
 * Builds the keys of one resource inside one hash tag, so every script of the resource works on
 * Redis Cluster. `{`, `}` and `%` in the name are percent-escaped: a name can never change its
 * slot, and two names that differ only in braces never share a key.
 *
 * @example
 * const ks = keyspace('x', 'quota', 'wallet:123');
 * ks.key('state'); // 'x:quota:{wallet:123}:state'
 */
export function keyspace(prefix: string, primitive: string, name: string): Keyspace {
  assertPrefix(prefix);
  assertName('name', name);
  const base = `${prefix}:${primitive}:{${escapeTag(name)}}`;
  return { base, key: (suffix) => `${base}:${suffix}`, channel: `${base}:wake` };
}

function escapeTag(name: string): string {
  return name.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}
