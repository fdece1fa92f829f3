import {
  assertDurationMs,
  assertName,
  assertPrefix,
  assertSignal,
  assertTimeoutMs,
  InvalidArgumentError,
  keyspace,
  type Keyspace,
} from '@x/redis-core';

/** Options every event takes. */
export interface EventOptions {
  /**
   * Let the keys of an unused event expire after this many ms (1 to 2^31 − 1); every call
   * that touches the event gives its keys this long again. For an AutoResetEvent it also bounds
   * how long a signal nobody waited for is kept.
   * @default undefined (kept until cleared)
   */
  ttlMs?: number;
  /**
   * Prefix of every key (`<prefix>:<kind>:{<name>}:...`).
   * @default 'x'
   */
  prefix?: string;
}

/** Options of a wait. */
export interface EventWaitOptions {
  /** Give up after this many ms with `EventTimeoutError`. @default Infinity */
  timeoutMs?: number;
  /** Give up when this aborts, rejecting with its reason. */
  signal?: AbortSignal;
}

/** Re-check period of a waiter in case a wake-up message was lost (a safety net, not polling). */
export const RECHECK_MS = 5_000;

/** @internal the validated common options of an event */
export function eventSetup(kind: string, name: string, options: EventOptions): { ks: Keyspace; ttlMs: number | null } {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
  assertName('name', name);
  const prefix = assertPrefix(options.prefix ?? 'x');
  const ttlMs = options.ttlMs === undefined ? null : assertDurationMs('ttlMs', options.ttlMs);
  return { ks: keyspace(prefix, kind, name), ttlMs };
}

/** @internal the validated options of a wait */
export function waitOptions(options: EventWaitOptions): { timeoutMs: number; signal: AbortSignal | undefined } {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
  return { timeoutMs: assertTimeoutMs(options.timeoutMs ?? Infinity), signal: assertSignal(options.signal) };
}

/** @internal how long a waiter may go without a re-check: a lost message must not strand it, and
 * its re-checks keep an expiring event's keys alive. */
export function recheckMs(ttlMs: number | null): number {
  return ttlMs === null ? RECHECK_MS : Math.max(1, Math.min(RECHECK_MS, Math.floor(ttlMs / 3)));
}
