import { assertName, assertPrefix, keyspace } from '@x/redis-core';

/**
 * Where the streams of one space live: every stream, group and dead-letter stream of a space
 * shares one hash tag, so a commit that writes state, publishes and acknowledges in one script
 * touches one slot on Redis Cluster.
 */
export interface StreamSpace {
  /** The space's name (the hash tag). */
  readonly space: string;
  /** The key of stream `name`: `x:streams:{space}:s:<name>`. */
  stream(name: string): string;
  /** The hash holding a group's lease, state, position and commit markers. */
  group(stream: string, group: string): string;
  /** The wake-up channel of the space (lease releases are announced there). */
  readonly channel: string;
  /** The wake-up target of one group on the channel (no spaces, as the bus requires). */
  target(stream: string, group: string): string;
}

/** Default key prefix, shared with the other @x primitives. */
export const DEFAULT_PREFIX = 'x';
/** Default space: every stream in one slot unless the user splits them. */
export const DEFAULT_SPACE = 'default';

/** Builds the key naming of one space (validates prefix and space). */
export function streamSpace(prefix: string = DEFAULT_PREFIX, space: string = DEFAULT_SPACE): StreamSpace {
  assertPrefix(prefix);
  assertName('space', space);
  const ks = keyspace(prefix, 'streams', space);
  return {
    space,
    stream: (name) => ks.key(`s:${name}`),
    // Stream and group names may hold ':' themselves: escape it so that two (stream, group)
    // pairs can never share a key.
    group: (stream, group) => ks.key(`g:${escape(stream)}:${escape(group)}`),
    channel: ks.channel,
    target: (stream, group) => `${encodeURIComponent(stream)}/${encodeURIComponent(group)}`,
  };
}

function escape(part: string): string {
  return part.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}
