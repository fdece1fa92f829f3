import { assertClient, defineScript, type RedisClientLike } from '@x/redis-core';
import { DEFAULT_PREFIX, DEFAULT_SPACE, isStreamKey, streamSpace, targetKey, type StreamSpace, type StreamTarget } from './keys';
import { ERRORS } from './lua';
import { flattenFields, type StreamFields } from './message';
import { traced } from './tracing';

/**
 * Appends one entry to a stream.
 *
 * KEYS: stream
 * ARGV: f1, v1, f2, v2, ...
 * Reply: the new entry's ID.
 */
const publishScript = defineScript({
  name: 'streams.publish',
  keys: ['stream'],
  errors: ERRORS,
  source: `if #ARGV == 0 or #ARGV % 2 == 1 then return redis.error_reply('INVALID_ARGUMENT fields must come in name/value pairs') end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV))`,
});

/**
 * Options of a {@link StreamProducer}.
 *
 * @example
 * const producer = new StreamProducer(client, { prefix: 'shop', space: 'orders' });
 */
export interface StreamProducerOptions {
  /**
   * Prefix of every key.
   * @default 'x'
   */
  prefix?: string;
  /**
   * The space (hash tag) the streams live in: use the consumer's space.
   * @default 'default'
   */
  space?: string;
}

/**
 * Publishes messages to streams of one space, with the key naming the consumers read.
 *
 * @example
 * const producer = new StreamProducer(client);
 * const id = await producer.publish('sales', { sku: 'A1', quantity: '3' });
 */
export class StreamProducer {
  readonly #client: RedisClientLike;
  readonly #space: StreamSpace;
  readonly #prefix: string;

  constructor(client: RedisClientLike, options: StreamProducerOptions = {}) {
    assertClient(client);
    this.#client = client;
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    this.#space = streamSpace(this.#prefix, options.space ?? DEFAULT_SPACE);
  }

  /**
   * Appends `fields` to `stream` in one round trip and returns the entry's ID: a stream of the
   * producer's space, or a raw key (`{ key: 'orders' }`, the consumer's `stream: { key }`).
   * Nothing is trimmed. Rejects with `InvalidArgumentError` (before sending anything) for an
   * empty stream name or key, no fields, or a value that is not a string.
   *
   * @example
   * await producer.publish('sales', { sku: 'A1', quantity: '3' });
   * await producer.publish({ key: 'orders' }, { sku: 'A1' });
   */
  async publish(stream: StreamTarget, fields: StreamFields): Promise<string> {
    // One XADD touches one key: a stream of any space is fine here.
    const space = typeof stream === 'object' && stream !== null && 'space' in stream ? streamSpace(this.#prefix, stream.space) : this.#space;
    const key = targetKey(space, stream);
    const flat = flattenFields(fields);
    const name = typeof stream === 'string' ? stream : isStreamKey(stream) ? key : stream.stream;
    return traced.publish.trace(name, async () => String(await publishScript.run(this.#client, [key], flat)));
  }
}
