/**
 * Turns a consumer's state into the string stored in Redis and back. Stored data is never
 * anything that executes on load.
 *
 * @example
 * const versioned: StateCodec<Stock> = {
 *   encode: (s) => JSON.stringify({ v: 1, s }),
 *   decode: (text) => JSON.parse(text).s,
 * };
 */
export interface StateCodec<S> {
  encode(state: S): string;
  decode(text: string): S;
}

/**
 * The default codec: JSON.
 *
 * @example
 * new StreamConsumer(client, { ..., codec: jsonCodec });
 */
export const jsonCodec: StateCodec<any> = {
  encode: (state) => {
    const text = JSON.stringify(state);
    // JSON.stringify(undefined) is undefined: store null instead so decoding round-trips.
    return text === undefined ? 'null' : text;
  },
  decode: (text) => JSON.parse(text),
};
