import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidArgumentError, MAX_DURATION_MS, assertDurationMs, assertInteger, assertName } from '@x/redis-core';
import { jsonCodec, type StateCodec } from './codec';
import { StreamCodecError } from './errors';
import { DEFAULT_PREFIX, DEFAULT_SPACE, assertKey, isStreamKey, type StreamKey } from './keys';
import type { StreamMessage } from './message';
import type { StreamTransaction } from './transaction';

/**
 * Handles one message. Change `tx.state`, call `tx.publish`; throw to roll both back (the
 * message is retried with backoff, then dead-lettered after `maxDeliveries`).
 *
 * @example
 * const handler: StreamHandler<{ count: number }> = (message, tx) => { tx.state.count += 1; };
 */
export type StreamHandler<S> = (message: StreamMessage, tx: StreamTransaction<S>) => void | Promise<void>;

/**
 * How a group processes its stream: `stateful` (one fenced processor, state, stream order) or
 * `competing` (stateless consumers sharing the messages).
 *
 * @example
 * new StreamConsumer(client, { stream: 'emails', group: 'senders', mode: 'competing', handler });
 */
export type StreamMode = 'stateful' | 'competing';

/**
 * How far a stream this package writes to may grow: entries beyond `maxLen`, or whose ID is
 * older than `maxAgeMs` (the ID's time part), are trimmed after each write. Approximate by
 * default (`XTRIM ~`: whole internal nodes only, so a little more may stay; much cheaper).
 *
 * @example
 * outputRetention: { maxLen: 100_000 }, deadLetterRetention: { maxAgeMs: 7 * 24 * 3_600_000 }
 */
export interface StreamRetention {
  /** Keep at most this many entries. */
  maxLen?: number;
  /** Trim entries whose ID is older than this many milliseconds (server time). */
  maxAgeMs?: number;
  /**
   * `XTRIM ~` (trim whole nodes only) rather than exactly.
   * @default true
   */
  approximate?: boolean;
}

/**
 * Options of a {@link StreamConsumer}.
 *
 * @example
 * const options: StreamConsumerOptions<{ stock: number }> = {
 *   stream: 'sales', group: 'inventory-tracker', initialState: { stock: 100 },
 *   handler: (message, tx) => { tx.state.stock -= Number(message.fields.quantity); },
 *   batchSize: 100, maxDeliveries: 5,
 * };
 */
export interface StreamConsumerOptions<S> {
  /**
   * The stream to consume: a name inside the space (`'sales'` is the key
   * `x:streams:{default}:s:sales`), or `{ key }`, a Redis key used as is (a stream another
   * service writes with `XADD`). The group's own keys then share the key's hash tag: see the README.
   */
  stream: string | StreamKey;
  /** The consumer group: the consumer's identity (its state, position and lease belong to it). */
  group: string;
  /** Called for each message, in stream order in stateful mode. */
  handler: StreamHandler<S>;
  /**
   * The state a new group starts with (JSON by default). Giving it makes the mode `stateful`.
   * @default null in stateful mode
   */
  initialState?: S;
  /**
   * `stateful`: one active processor per group (the others stand by), state, position and
   * publishes commit in one fenced script. `competing`: stateless, many consumers share the
   * group's messages; a crashed consumer's messages are claimed after `claimIdleMs`.
   * @default 'stateful' when initialState is given, else 'competing'
   */
  mode?: StreamMode;
  /**
   * Prefix of every key.
   * @default 'x'
   */
  prefix?: string;
  /**
   * The space (Redis Cluster hash tag) of the stream, its groups, its dead-letter stream and
   * every stream the handler publishes to. Producers must use the same space.
   * @default 'default'
   */
  space?: string;
  /**
   * Stateful mode: how long a crashed processor keeps the group before a standby or restarted
   * instance takes over. Renewed while the processor lives (and by every commit).
   * @default 10_000
   */
  leaseMs?: number;
  /**
   * Messages read (and committed) at a time.
   * @default 10
   */
  batchSize?: number;
  /**
   * Longest single blocking wait for new messages (on the consumer's own connection) before it
   * re-checks its lease, its claim pass and `stop()`.
   * @default 2_000
   */
  blockMs?: number;
  /**
   * Competing mode: how long a message may sit unacknowledged in a consumer's hands before
   * another consumer claims it. Make it longer than your slowest handler.
   * @default 30_000
   */
  claimIdleMs?: number;
  /**
   * Deliveries after which a failing message moves to the dead-letter stream with its error.
   * @default 10
   */
  maxDeliveries?: number;
  /**
   * Backoff before the first retry of a failed message; doubled per failure, with jitter.
   * @default 100
   */
  retryDelayMs?: number;
  /**
   * Longest backoff between retries.
   * @default 5_000
   */
  maxRetryDelayMs?: number;
  /**
   * The stream that receives messages that failed `maxDeliveries` times: a name in the space,
   * or `{ key }`. On Redis Cluster it must share the source's slot (checked by `start()`).
   * @default `${stream}:dead` in the space; for a raw key, `<prefix>:streams:{<tag>}:dead:<key>`
   */
  deadLetterStream?: string | StreamKey;
  /**
   * Trimming of every stream the handler publishes to, done by the commit that wrote them.
   * Output entries nobody has read yet are trimmed too: bound them only when that is fine.
   * @default never trimmed
   */
  outputRetention?: StreamRetention;
  /**
   * Trimming of the dead-letter stream, done when a message is dead-lettered.
   * @default never trimmed
   */
  deadLetterRetention?: StreamRetention;
  /**
   * Trimming of the source stream. `'acknowledged'`: each commit deletes the entries that every
   * consumer group of the stream has acknowledged (below the oldest entry still pending in, or
   * not yet delivered to, any group), never one still needed; a group created later starts
   * after them. `'never'` leaves the stream to you.
   * @default 'never'
   */
  trim?: 'never' | 'acknowledged';
  /**
   * On Redis Cluster, stage `tx.publish` to a key outside the source's slot in the group's
   * outbox (committed with everything else) and relay it to its target exactly once, from this
   * process, instead of refusing it with `StreamCrossSlotError`. No effect on a single server.
   * @default false
   */
  outbox?: boolean;
  /**
   * Encodes the state for Redis and decodes it back.
   * @default JSON
   */
  codec?: StateCodec<S>;
  /**
   * Competing mode: this consumer's name inside the Redis group. Must be unique among the
   * instances running at the same time (instances sharing a name share one pending list).
   * @default `${hostname}-${pid}-${random}`
   */
  consumerName?: string;
  /**
   * Called with every error the consumer absorbed: a handler's error (with its message), a
   * commit refused by the fence (`STREAM_FENCED`), a connection error it retried. Never throws
   * back into the consumer.
   * @default ignore
   */
  onError?: (error: unknown, message?: StreamMessage) => void;
}

/** Options after defaults and validation. */
export interface ResolvedOptions<S> {
  stream: string | StreamKey;
  group: string;
  handler: StreamHandler<S>;
  mode: StreamMode;
  prefix: string;
  space: string;
  leaseMs: number;
  batchSize: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  deadLetterStream: string | StreamKey | undefined;
  /** Script arguments: maxLen (0: none), maxAgeMs (0: none), approximate (1|0). */
  outputTrim: [number, number, number];
  deadLetterTrim: [number, number, number];
  trimSource: boolean;
  outbox: boolean;
  codec: StateCodec<S>;
  consumerName: string;
  onError: ((error: unknown, message?: StreamMessage) => void) | undefined;
  /** The initial state, encoded. */
  initialEncoded: string;
}

/** Checks a retention option and turns it into script arguments (`[0, 0, 1]`: no trimming). */
export function resolveRetention(label: string, value: StreamRetention | undefined): [number, number, number] {
  if (value === undefined) return [0, 0, 1];
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError(`${label} must be an object`);
  if (value.maxLen === undefined && value.maxAgeMs === undefined) throw new InvalidArgumentError(`${label} needs maxLen or maxAgeMs`);
  const maxLen = value.maxLen === undefined ? 0 : assertInteger(`${label}.maxLen`, value.maxLen, 1);
  const maxAgeMs = value.maxAgeMs === undefined ? 0 : assertInteger(`${label}.maxAgeMs`, value.maxAgeMs, 1, 1e15);
  if (value.approximate !== undefined && typeof value.approximate !== 'boolean') throw new InvalidArgumentError(`${label}.approximate must be a boolean`);
  return [maxLen, maxAgeMs, value.approximate === false ? 0 : 1];
}

function sameTarget(a: string | StreamKey | undefined, b: string | StreamKey): boolean {
  if (a === undefined) return false;
  return typeof a === 'string' ? a === b : typeof b === 'object' && a.key === b.key;
}

/** Redis consumer name of the single active processor of a stateful group. */
export const STATEFUL_CONSUMER = 'processor';

/** Checks every option before anything is sent to Redis. */
export function resolveOptions<S>(options: StreamConsumerOptions<S>): ResolvedOptions<S> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
  const stream = isStreamKey(options.stream) ? { key: assertKey('stream', options.stream) } : assertName('stream', options.stream);
  const group = assertName('group', options.group);
  if (typeof options.handler !== 'function') throw new InvalidArgumentError('handler must be a function');
  const mode = options.mode ?? (options.initialState !== undefined ? 'stateful' : 'competing');
  if (mode !== 'stateful' && mode !== 'competing') {
    throw new InvalidArgumentError(`mode must be 'stateful' or 'competing', got ${JSON.stringify(mode)}`);
  }
  if (mode === 'competing' && options.initialState !== undefined) {
    throw new InvalidArgumentError('initialState needs mode stateful: competing consumers keep no state');
  }
  const codec = options.codec ?? (jsonCodec as StateCodec<S>);
  if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new InvalidArgumentError('codec must have encode and decode functions');
  }
  const retryDelayMs = assertInteger('retryDelayMs', options.retryDelayMs ?? 100, 0, MAX_DURATION_MS);
  const maxRetryDelayMs = assertInteger('maxRetryDelayMs', options.maxRetryDelayMs ?? Math.max(5_000, retryDelayMs), retryDelayMs, MAX_DURATION_MS);
  const dl = options.deadLetterStream;
  const deadLetterStream = dl === undefined ? undefined : isStreamKey(dl) ? { key: assertKey('deadLetterStream', dl) } : assertName('deadLetterStream', dl);
  if (sameTarget(deadLetterStream, stream)) throw new InvalidArgumentError('deadLetterStream must differ from stream');
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new InvalidArgumentError('onError must be a function');
  if (options.trim !== undefined && options.trim !== 'never' && options.trim !== 'acknowledged') {
    throw new InvalidArgumentError(`trim must be 'never' or 'acknowledged', got ${JSON.stringify(options.trim)}`);
  }
  if (options.outbox !== undefined && typeof options.outbox !== 'boolean') throw new InvalidArgumentError('outbox must be a boolean');
  const outputTrim = resolveRetention('outputRetention', options.outputRetention);
  const deadLetterTrim = resolveRetention('deadLetterRetention', options.deadLetterRetention);
  let initialEncoded = '';
  if (mode === 'stateful') {
    try {
      initialEncoded = codec.encode((options.initialState ?? null) as S);
      codec.decode(initialEncoded);
    } catch (error) {
      throw new StreamCodecError('the codec cannot round-trip initialState', { cause: error });
    }
    if (typeof initialEncoded !== 'string') throw new StreamCodecError('codec.encode must return a string');
  }
  return {
    stream,
    group,
    handler: options.handler,
    mode,
    prefix: options.prefix ?? DEFAULT_PREFIX,
    space: options.space ?? DEFAULT_SPACE,
    leaseMs: assertDurationMs('leaseMs', options.leaseMs ?? 10_000, 100),
    batchSize: assertInteger('batchSize', options.batchSize ?? 10, 1, 1_000),
    blockMs: assertDurationMs('blockMs', options.blockMs ?? 2_000),
    claimIdleMs: assertDurationMs('claimIdleMs', options.claimIdleMs ?? 30_000),
    maxDeliveries: assertInteger('maxDeliveries', options.maxDeliveries ?? 10, 1, 1_000_000),
    retryDelayMs,
    maxRetryDelayMs,
    deadLetterStream,
    outputTrim,
    deadLetterTrim,
    trimSource: options.trim === 'acknowledged',
    outbox: options.outbox === true,
    codec,
    consumerName:
      mode === 'stateful'
        ? STATEFUL_CONSUMER
        : assertName('consumerName', options.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`),
    onError: options.onError,
    initialEncoded,
  };
}
