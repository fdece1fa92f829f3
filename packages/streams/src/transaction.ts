import { InvalidArgumentError } from '@x/redis-core';
import type { StreamTarget } from './keys';
import { flattenFields, type StreamFields } from './message';

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
   * Adds a message to publish when this message commits: to a stream of the consumer's space
   * (`'alerts'`), or to a raw key (`{ key: '{orders}:alerts' }`). Throws `InvalidArgumentError`
   * for a bad target or bad fields, and `StreamCrossSlotError` for a stream of another space, or
   * (on Redis Cluster) a key in another slot than the source.
   */
  publish(stream: StreamTarget, fields: StreamFields): void;
  /** Aborted when the consumer lost its hold on the message (stateful: the lease). */
  readonly signal: AbortSignal;
}

/** A publish collected by a transaction. */
export interface CollectedPublish {
  /** The Redis key of the target stream. */
  key: string;
  flat: string[];
}

/** The transaction handed to one handler call. */
export class Transaction<S> implements StreamTransaction<S> {
  state: S;
  readonly signal: AbortSignal;
  readonly publishes: CollectedPublish[] = [];
  #open = true;
  readonly #resolve: (target: StreamTarget) => string;

  /** `resolve` turns a target into its key, or throws (bad target, another slot). */
  constructor(state: S, resolve: (target: StreamTarget) => string, signal: AbortSignal) {
    this.state = state;
    this.#resolve = resolve;
    this.signal = signal;
  }

  publish(stream: StreamTarget, fields: StreamFields): void {
    if (!this.#open) throw new InvalidArgumentError('publish was called after the handler returned; its transaction is over');
    const key = this.#resolve(stream);
    this.publishes.push({ key, flat: flattenFields(fields) });
  }

  /** Ends the transaction: later publishes throw. */
  close(): void {
    this.#open = false;
  }
}
