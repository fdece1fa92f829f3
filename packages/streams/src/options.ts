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
  codec: StateCodec<S>;
  consumerName: string;
  onError: ((error: unknown, message?: StreamMessage) => void) | undefined;
  /** The initial state, encoded. */
  initialEncoded: string;
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
    codec,
    consumerName:
      mode === 'stateful'
        ? STATEFUL_CONSUMER
        : assertName('consumerName', options.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`),
    onError: options.onError,
    initialEncoded,
  };
}
