import { InvalidArgumentError } from '@x/redis-core';

/**
 * Turns values into the strings stored in Redis and back. Stored data is never executed on load.
 *
 * @example
 * const bytes: Codec<Buffer> = {
 *   encode: (b) => b.toString('base64'),
 *   decode: (s) => Buffer.from(s, 'base64'),
 * };
 * const q = new LeasedKeyQueue<Buffer>(client, 'blobs', { codec: bytes });
 */
export interface Codec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

/**
 * The default codec: JSON. `undefined` (and anything else JSON cannot represent) is refused with
 * an `InvalidArgumentError` before anything is sent.
 *
 * @example
 * jsonCodec.encode({ action: 'process' }); // '{"action":"process"}'
 */
export const jsonCodec: Codec<unknown> = {
  encode(value) {
    const text = JSON.stringify(value);
    if (typeof text !== 'string') throw new InvalidArgumentError(`value must be JSON-serialisable, got ${typeof value}`);
    return text;
  },
  decode(text) {
    return JSON.parse(text) as unknown;
  },
};
