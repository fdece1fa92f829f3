import { InvalidArgumentError, assertName, assertPrefix, keyspace } from '@x/redis-core';
import { StreamCrossSlotError } from './errors';
import { slotOf, tagFor } from './slots';

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

/**
 * A stream named by its Redis key, as another service, a CDC tool or `XADD` from a shell wrote
 * it. The key is used as given: no prefix, no space.
 *
 * @example
 * new StreamConsumer(client, { stream: { key: 'orders' }, group: 'billing', handler });
 */
export interface StreamKey {
  key: string;
}

/**
 * A stream named inside a space (the space's hash tag puts it in the space's slot).
 *
 * @example
 * tx.publish({ space: 'shop', stream: 'invoices' }, { order: '42' }); // fine when the consumer's space is 'shop'
 */
export interface StreamAddress {
  space: string;
  stream: string;
}

/**
 * Where a message is published: a stream name in the consumer's (or producer's) space, a stream
 * of a named space, or a raw Redis key.
 *
 * @example
 * const targets: StreamTarget[] = ['alerts', { space: 'shop', stream: 'alerts' }, { key: '{orders}:alerts' }];
 */
export type StreamTarget = string | StreamAddress | StreamKey;

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

/** The keys one consumer group works with. */
export interface GroupKeys {
  /** The source's name as messages and traces show it: the stream name, or the raw key. */
  readonly name: string;
  /** Whether the source was given as a raw key. */
  readonly raw: boolean;
  readonly stream: string;
  readonly group: string;
  readonly dead: string;
  readonly deadName: string;
  readonly channel: string;
  readonly target: string;
  /** The group's outbox stream (cross-slot publishes staged by commits). */
  readonly outbox: string;
  /** The relay marker of this group beside `target` (same slot as the target). */
  relayMarker(target: string): string;
}

/** Whether `value` is `{ key }` (a raw key). */
export function isStreamKey(value: unknown): value is StreamKey {
  return typeof value === 'object' && value !== null && 'key' in value;
}

/** Checks a raw key and returns it. */
export function assertKey(label: string, value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${label} must be a stream name or { key }`);
  }
  return assertName(`${label}.key`, (value as StreamKey).key);
}

/**
 * The keys of group `group` on `source`. A named source lives in its space. A raw key keeps its
 * own name, and the group's hash (state, lease, position, commit markers) and default dead-letter
 * stream go under `<prefix>:streams:{<tag>}`, where `<tag>` is the key's hash tag, or the whole key
 * when it has none (`orders` → `x:streams:{orders}:k:orders:<group>`): same slot as the source.
 */
export function groupKeys(
  prefix: string,
  space: string,
  source: string | StreamKey,
  group: string,
  deadLetter: string | StreamKey | undefined,
): GroupKeys {
  const s = streamSpace(prefix, space);
  const marker = (groupKey: string) => (target: string) => `${prefix}:streams:{${tagFor(target)}}:relayed:${escape(groupKey)}:${escape(target)}`;
  if (typeof source === 'string') {
    const groupKey = s.group(source, group);
    const deadName = typeof deadLetter === 'string' ? deadLetter : deadLetter ? deadLetter.key : `${source}:dead`;
    return {
      name: source,
      raw: false,
      stream: s.stream(source),
      group: groupKey,
      dead: typeof deadLetter === 'object' ? deadLetter.key : s.stream(deadName),
      deadName,
      channel: s.channel,
      target: s.target(source, group),
      outbox: `${groupKey}:outbox`,
      relayMarker: marker(groupKey),
    };
  }
  const key = source.key;
  // Built by hand, not with keyspace(): the tag must stay byte for byte the key's own tag.
  const base = `${prefix}:streams:{${tagFor(key)}}`;
  const deadKey = typeof deadLetter === 'string' ? s.stream(deadLetter) : deadLetter ? deadLetter.key : `${base}:dead:${key}`;
  const groupKey = `${base}:k:${escape(key)}:${escape(group)}`;
  return {
    name: key,
    raw: true,
    stream: key,
    group: groupKey,
    outbox: `${groupKey}:outbox`,
    relayMarker: marker(groupKey),
    dead: deadKey,
    deadName: typeof deadLetter === 'string' ? deadLetter : deadKey,
    channel: `${base}:wake`,
    // Two slashes: never the target of a named stream (whose parts are URI-encoded).
    target: `${encodeURIComponent(key)}/${encodeURIComponent(group)}/k`,
  };
}

function escape(part: string): string {
  return part.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

/**
 * The key of a publish target. A string is a stream of `space`; `{ space, stream }` must name
 * `space` itself (a commit writes to its own space only); `{ key }` is used as is.
 */
export function targetKey(space: StreamSpace, target: unknown): string {
  if (typeof target === 'string') return space.stream(assertName('stream', target));
  if (isStreamKey(target)) return assertKey('stream', target);
  if (typeof target === 'object' && target !== null && 'space' in target && 'stream' in target) {
    const t = target as StreamAddress;
    assertName('space', t.space);
    assertName('stream', t.stream);
    if (t.space !== space.space) {
      throw new StreamCrossSlotError(
        `cannot publish to ${JSON.stringify(t.stream)} in space ${JSON.stringify(t.space)}: a commit writes only to streams of its own space (${JSON.stringify(space.space)})`,
        [space.stream(t.stream)],
      );
    }
    return space.stream(t.stream);
  }
  throw new InvalidArgumentError('a stream must be a name, { space, stream } or { key }');
}

/**
 * Refuses keys of one commit that Redis Cluster would put in different slots, naming them and
 * the fix (nothing is sent).
 */
export function assertOneSlot(what: string, source: string, keys: readonly string[]): void {
  const slot = slotOf(source);
  const off = keys.filter((k) => slotOf(k) !== slot);
  if (off.length === 0) return;
  const list = off.map((k) => `${JSON.stringify(k)} (slot ${slotOf(k)})`).join(', ');
  throw new StreamCrossSlotError(
    `${what}: ${list} not in the slot of the source ${JSON.stringify(source)} (slot ${slot}); on Redis Cluster every key of one commit must share a slot. ` +
      `Put them in the source's hash tag, e.g. ${JSON.stringify(`{${tagFor(source)}}:${off[0]}`)}`,
    [source, ...off],
  );
}
