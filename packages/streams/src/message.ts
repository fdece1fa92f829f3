import { InvalidArgumentError } from '@x/redis-core';

/**
 * The fields of a stream entry: field names to string values.
 *
 * @example
 * const fields: StreamFields = { sku: 'A1', quantity: '3' };
 */
export type StreamFields = Record<string, string>;

/**
 * One message as the handler receives it.
 *
 * @example
 * handler: async (message, tx) => {
 *   console.log(message.id, message.fields.sku, `attempt ${message.deliveries}`);
 * }
 */
export interface StreamMessage {
  /** The entry's stream ID, e.g. `1700000000000-0`. */
  readonly id: string;
  /** The stream's name (as given to the consumer, not the Redis key). */
  readonly stream: string;
  readonly fields: Readonly<StreamFields>;
  /**
   * How many times the message has been delivered, this delivery included (Redis's delivery
   * counter: handler attempts, and re-reads after a crash or a lost reply).
   */
  readonly deliveries: number;
}

/** A message as a read script returns it; `fields` is null for an entry deleted meanwhile. */
export interface RawMessage {
  id: string;
  deliveries: number;
  fields: StreamFields | null;
}

/** What a read (alone or after a commit) returned. */
export interface ReadResult {
  /** `pending` (this consumer's own, re-read), `claimed`, `new` or `empty`. */
  kind: string;
  /** The XAUTOCLAIM cursor after this read ('' when no claim pass ran). */
  cursor: string;
  /** When empty: the stream's last entry ID, to block after. */
  lastId: string;
  messages: RawMessage[];
}

/** Reads `[kind, cursor, lastId, id, deliveries, flatFields|null, ...]` starting at `from`. */
export function parseRead(reply: readonly unknown[], from: number): ReadResult {
  const messages: RawMessage[] = [];
  for (let i = from + 3; i + 2 < reply.length; i += 3) {
    const flat = reply[i + 2] as string[] | null;
    let fields: StreamFields | null = null;
    if (Array.isArray(flat)) {
      fields = {};
      for (let j = 0; j + 1 < flat.length; j += 2) fields[String(flat[j])] = String(flat[j + 1]);
    }
    messages.push({ id: String(reply[i]), deliveries: Number(reply[i + 1]), fields });
  }
  return { kind: String(reply[from]), cursor: String(reply[from + 1] ?? ''), lastId: String(reply[from + 2] ?? '0-0'), messages };
}

/**
 * Checks the fields of a message to publish and flattens them to `[f1, v1, f2, v2, ...]`.
 * At least one field; every value a string.
 */
export function flattenFields(fields: unknown): string[] {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw new InvalidArgumentError('fields must be an object of string values');
  }
  const flat: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string') {
      throw new InvalidArgumentError(`field ${JSON.stringify(name)} must be a string, got ${value === null ? 'null' : typeof value}`);
    }
    flat.push(name, value);
  }
  if (flat.length === 0) throw new InvalidArgumentError('fields must hold at least one field');
  return flat;
}
