import { InvalidArgumentError, assertName } from '@x/redis-core';
import { StreamCrossSlotError } from './errors';
import { flattenFields, type StreamFields } from './message';

/**
 * A stream named with its space; only the consumer's own space can be published to.
 *
 * @example
 * tx.publish({ space: 'shop', stream: 'invoices' }, { order: '42' }); // fine when the consumer's space is 'shop'
 */
export interface StreamAddress {
  space: string;
  stream: string;
}

/**
 * What a handler works with: the group's state (stateful mode) and the publishes that commit
 * together with it. Nothing the handler does here reaches Redis unless the handler returns
 * without throwing; then state, publishes and the message's acknowledgement commit in one
 * script, or not at all.
 *
 * @example
 * handler: async (message, tx) => {
 *   tx.state.stock -= Number(message.fields.quantity);
 *   if (tx.state.stock <= 10) tx.publish('restock-alerts', { sku: message.fields.sku! });
 * }
 */
export interface StreamTransaction<S> {
  /** The state to read and change (or replace). Rolled back when the handler throws. */
  state: S;
  /**
   * Adds a message to publish to `stream` (a stream of the consumer's space) when this
   * message commits. Throws `InvalidArgumentError` for bad fields and `StreamCrossSlotError`
   * for a stream of another space.
   */
  publish(stream: string | StreamAddress, fields: StreamFields): void;
  /** Aborted when the consumer lost its hold on the message (stateful: the lease). */
  readonly signal: AbortSignal;
}

/** A publish collected by a transaction. */
export interface CollectedPublish {
  stream: string;
  flat: string[];
}

/** The transaction handed to one handler call. */
export class Transaction<S> implements StreamTransaction<S> {
  state: S;
  readonly signal: AbortSignal;
  readonly publishes: CollectedPublish[] = [];
  #open = true;
  readonly #space: string;

  constructor(state: S, space: string, signal: AbortSignal) {
    this.state = state;
    this.#space = space;
    this.signal = signal;
  }

  publish(stream: string | StreamAddress, fields: StreamFields): void {
    if (!this.#open) throw new InvalidArgumentError('publish was called after the handler returned; its transaction is over');
    let name: unknown = stream;
    if (typeof stream === 'object' && stream !== null) {
      assertName('space', stream.space);
      if (stream.space !== this.#space) {
        throw new StreamCrossSlotError(
          `cannot publish to ${JSON.stringify(stream.stream)} in space ${JSON.stringify(stream.space)}: a commit writes only to streams of its own space (${JSON.stringify(this.#space)})`,
        );
      }
      name = stream.stream;
    }
    assertName('stream', name);
    this.publishes.push({ stream: name as string, flat: flattenFields(fields) });
  }

  /** Ends the transaction: later publishes throw. */
  close(): void {
    this.#open = false;
  }
}
