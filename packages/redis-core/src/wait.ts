import type { RedisClientLike } from './client';
import { WakeBus } from './wake-bus';

/** What one attempt of a wait found. */
export type Attempt<T> = { done: T } | { retryInMs: number };

/** How to wait for one thing; see {@link waitFor}. */
export interface WaitSpec<T> {
  client: RedisClientLike;
  /** The resource's wake-up channel. */
  channel: string;
  /** This waiter's identity: messages addressed to it (and broadcasts) wake it. */
  target: string;
  /**
   * One round trip: take the thing if it can be had (registering as a waiter if the primitive
   * queues), else say when to re-check at the latest (bounded by the holder's lease), in case
   * a wake-up message is lost. `listening` is false for the attempt made before subscribing
   * (a primitive that addresses wake-ups should not register a waiter then), true afterwards.
   */
  attempt(listening: boolean): Promise<Attempt<T>>;
  /** Reads a wake-up payload: the result when the thing was handed over in it, else undefined. */
  onWake?(payload: string): T | undefined;
  /** Undoes a cancelled wait: leaves the queue, gives back a grant that was in flight. */
  cancel?(): Promise<void>;
  /** `Infinity`, or the total time to wait. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  timeoutError(): Error;
}

/**
 * Waits without polling: attempts once; if that fails, subscribes to the resource's channel and
 * attempts again (so nothing published in between is missed); after that it attempts again only
 * when a wake-up arrives or the re-check timer (a safety net for a lost message, bounded by the
 * holder's lease) fires. A result handed over in the message itself is
 * returned with no further round trip. On timeout or abort, `cancel` runs before the rejection.
 *
 * @example
 * const handle = await waitFor({
 *   client, channel: ks.channel, target: token, timeoutMs, signal,
 *   attempt: async () => ..., onWake: (payload) => ..., cancel: async () => ...,
 *   timeoutError: () => new LockTimeoutError(name, timeoutMs),
 * });
 */
export async function waitFor<T>(spec: WaitSpec<T>): Promise<T> {
  const { signal } = spec;
  signal?.throwIfAborted();
  const startedAt = performance.now();
  // The uncontended case costs one round trip: attempt before subscribing. Only when that fails
  // do we subscribe, and then attempt again, so a wake-up sent in between cannot be missed. When
  // the channel is subscribed already (another waiter, or a lingering subscription), listening
  // costs nothing and the first attempt is the one after it.
  const bus = WakeBus.for(spec.client);
  if (!bus.isSubscribed(spec.channel)) {
    let first: Attempt<T>;
    try {
      first = await spec.attempt(false);
    } catch (error) {
      await spec.cancel?.().catch(() => undefined);
      throw error;
    }
    if ('done' in first) return first.done;
  }
  let handed: { value: T } | undefined;
  let woken = false;
  let notify: (() => void) | undefined;
  const stop = await bus.listen(spec.channel, spec.target, (payload) => {
    if (payload !== null && spec.onWake && !handed) {
      // A payload that cannot be read is only a reason to re-check.
      let value: T | undefined;
      try {
        value = spec.onWake(payload);
      } catch {
        value = undefined;
      }
      if (value !== undefined) handed = { value };
    }
    woken = true;
    notify?.();
  });
  let cancelled = false;
  const giveUp = async (error: unknown): Promise<never> => {
    if (!cancelled && spec.cancel) {
      cancelled = true;
      await spec.cancel().catch(() => undefined);
    }
    throw error;
  };
  try {
    for (;;) {
      if (handed) return handed.value;
      woken = false;
      let result: Attempt<T>;
      try {
        result = await spec.attempt(true);
      } catch (error) {
        return await giveUp(error);
      }
      if ('done' in result) return result.done;
      if (handed) return (handed as { value: T }).value;
      if (woken) continue;
      const left = spec.timeoutMs - (performance.now() - startedAt);
      if (left <= 0) return await giveUp(spec.timeoutError());
      if (signal?.aborted) return await giveUp(signal.reason);
      const outcome = await new Promise<'wake' | 'timer' | 'timeout' | 'abort'>((resolve) => {
        const delay = Math.max(1, Math.min(result.retryInMs, left));
        const timer = setTimeout(() => finish(delay === left ? 'timeout' : 'timer'), delay);
        const onAbort = (): void => finish('abort');
        function finish(why: 'wake' | 'timer' | 'timeout' | 'abort'): void {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          notify = undefined;
          resolve(why);
        }
        notify = () => finish('wake');
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      if (handed) return (handed as { value: T }).value;
      if (outcome === 'abort') return await giveUp(signal?.reason);
      if (outcome === 'timeout') return await giveUp(spec.timeoutError());
    }
  } finally {
    await stop();
  }
}
