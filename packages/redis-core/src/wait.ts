import type { RedisClientLike } from './client';
import { Backoff, faultOf, isTransient } from './faults';
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
  /** The primitive's timeout error; a transient fault met on the way becomes its `cause`. */
  timeoutError(): Error;
}

/**
 * An attempt still in flight at the deadline (a paused or unreachable server) gets this much more
 * before the wait gives up on it, so that a slow reply is not taken for a lost one.
 */
const IN_FLIGHT_GRACE_MS = 1_000;

/** How long a wait that met a fault and gives up lets its `cancel` run before rejecting (a server that is down). */
const CANCEL_GRACE_MS = 1_000;

/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type Raced<R> = { value: R } | { error: unknown } | { stop: 'timeout' | 'abort' | 'wake' };

/**
 * Waits without polling: attempts once; if that fails, subscribes to the resource's channel and
 * attempts again (so nothing published in between is missed); after that it attempts again only
 * when a wake-up arrives or the re-check timer (a safety net for a lost message, bounded by the
 * holder's lease) fires. A result handed over in the message itself is
 * returned with no further round trip. On timeout or abort, `cancel` runs before the rejection.
 *
 * Transient server faults (see {@link isTransient}: a reset or refused connection, a timeout,
 * `LOADING`, `TRYAGAIN`, a failover, ...) of an attempt or of the subscription are retried with
 * capped, jittered backoff until the caller's own deadline, so the caller sees its result or its
 * timeout error, whose `cause` is then the last fault. Any other error rejects at once.
 *
 * @example
 * const handle = await waitFor({
 *   client, channel: ks.channel, target: token, timeoutMs, signal,
 *   attempt: async () => ..., onWake: (payload) => ..., cancel: async () => ...,
 *   timeoutError: () => new LockTimeoutError(name, timeoutMs),
 * });
 */
export async function waitFor<T>(spec: WaitSpec<T>): Promise<T> {
  const { signal, client } = spec;
  signal?.throwIfAborted();
  const deadline = performance.now() + spec.timeoutMs;
  const bus = WakeBus.for(client);
  const backoff = new Backoff();
  let lastFault: unknown;
  let handed: { value: T } | undefined;
  let woken = false;
  let notify: (() => void) | undefined;
  let stop: (() => Promise<void>) | undefined;
  let cancelled = false;

  const listener = (payload: string | null): void => {
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
  };

  // One abort listener for the whole wait (adding and removing one per step costs O(listeners)
  // each on a signal shared by thousands of waiters); it stops whatever step is in progress.
  let interrupt: ((why: 'abort') => void) | undefined;
  const onAbort = (): void => interrupt?.('abort');
  signal?.addEventListener('abort', onAbort, { once: true });

  /**
   * Settles with `work`'s outcome, or stops at `until` (the deadline, or a re-check time), on
   * abort, or (when `wakeable`) on a wake-up. What `work` yields after a stop is for `late`. With
   * `sentAt` (an attempt in flight), an abort waits for the reply until `IN_FLIGHT_GRACE_MS` after
   * it was sent: an attempt that took the thing must not be dropped for an abort.
   */
  const race = <R>(
    work: Promise<R> | undefined,
    until: number,
    wakeable: boolean,
    late?: (value: R) => void,
    sentAt?: number,
  ): Promise<Raced<R>> =>
    new Promise((resolve) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: Raced<R>): void => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        interrupt = undefined;
        if (wakeable) notify = undefined;
        resolve(outcome);
      };
      const stopAt = (at: number, why: 'timeout' | 'abort'): void => {
        const wait = at - performance.now();
        if (!Number.isFinite(wait)) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => finish({ stop: why }), Math.min(MAX_TIMER_MS, Math.max(0, wait)));
      };
      stopAt(until, 'timeout');
      interrupt = (why) => (sentAt === undefined ? finish({ stop: why }) : stopAt(Math.min(until, sentAt + IN_FLIGHT_GRACE_MS), why));
      if (signal?.aborted) interrupt('abort');
      if (wakeable) notify = () => finish({ stop: 'wake' });
      work?.then(
        (value) => (done ? late?.(value) : finish({ value })),
        (error: unknown) => finish({ error }),
      );
    });

  const timeoutError = (): Error => {
    const error = spec.timeoutError();
    if (lastFault !== undefined && error.cause === undefined) {
      Object.defineProperty(error, 'cause', { value: faultOf(lastFault), configurable: true, writable: true, enumerable: false });
    }
    return error;
  };

  const giveUp = async (error: unknown): Promise<never> => {
    if (!cancelled && spec.cancel) {
      cancelled = true;
      // Sent after any attempt still in flight (same connection), so it also undoes what that
      // attempt may yet be granted. It completes before the rejection, unless the wait met a
      // fault: a server that is down does not hold the rejection long.
      const undo = spec.cancel().catch(() => undefined);
      if (lastFault === undefined) await undo;
      else await race(undo, performance.now() + CANCEL_GRACE_MS, false);
    }
    throw error;
  };

  /** Runs one attempt; undefined when it met a transient fault (retry after a backoff). */
  const attempt = async (listening: boolean): Promise<Attempt<T> | undefined> => {
    const sentAt = performance.now();
    const outcome = await race(spec.attempt(listening), Math.max(deadline, sentAt + IN_FLIGHT_GRACE_MS), false, undefined, sentAt);
    if ('stop' in outcome) return giveUp(outcome.stop === 'abort' ? signal?.reason : timeoutError());
    if ('error' in outcome) {
      if (!isTransient(outcome.error, client)) return giveUp(outcome.error);
      lastFault = outcome.error;
      if (signal?.aborted) return giveUp(signal.reason);
      return undefined;
    }
    backoff.reset();
    // What an attempt took is the caller's, abort or not; otherwise an abort ends the wait here.
    if (!('done' in outcome.value) && signal?.aborted) return giveUp(signal.reason);
    return outcome.value;
  };

  /** Sleeps until `retryInMs` has passed, a wake-up, or the deadline; gives up at the deadline. */
  const pause = async (retryInMs: number): Promise<void> => {
    if (performance.now() >= deadline) return giveUp(timeoutError());
    const outcome = await race<never>(undefined, Math.min(deadline, performance.now() + Math.max(1, retryInMs)), stop !== undefined);
    if ('stop' in outcome && outcome.stop === 'abort') return giveUp(signal?.reason);
    if (handed) return;
    if (performance.now() >= deadline) return giveUp(timeoutError());
  };

  try {
    // The uncontended case costs one round trip: attempt before subscribing. Only when that fails
    // do we subscribe, and then attempt again, so a wake-up sent in between cannot be missed. When
    // the channel is subscribed already (another waiter, or a lingering subscription), listening
    // costs nothing and the first attempt is the one after it.
    if (!bus.isSubscribed(spec.channel)) {
      const first = await attempt(false);
      if (first && 'done' in first) return first.done;
      if (!first) await pause(backoff.next());
    }
    for (;;) {
      if (!stop) {
        const listening = bus.listen(spec.channel, spec.target, listener);
        const outcome = await race(listening, deadline, false, (late) => void late().catch(() => undefined));
        if ('stop' in outcome) return await giveUp(outcome.stop === 'abort' ? signal?.reason : timeoutError());
        if ('error' in outcome) {
          if (!isTransient(outcome.error, client)) return await giveUp(outcome.error);
          // Without a subscription the re-check timer still finds the thing; listening is
          // tried again before the next attempt.
          lastFault = outcome.error;
        } else {
          stop = outcome.value;
        }
      }
      if (handed) return handed.value;
      woken = false;
      const result = await attempt(true);
      if (result && 'done' in result) return result.done;
      if (handed) return (handed as { value: T }).value;
      if (result && woken) continue;
      await pause(result ? result.retryInMs : backoff.next());
      if (handed) return (handed as { value: T }).value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await stop?.();
  }
}
