import { put } from './codec';

/** How a cached error is stored: its name, message and own data properties (`code`, `status`, ...). */
export interface StoredError {
  name: string;
  message: string;
  props: Record<string, unknown>;
}

const MARKER = Symbol.for('x.idempotency.replayed');
const SKIPPED = new Set(['name', 'message', 'stack', 'cause', '__proto__', 'constructor']);

/**
 * An error cached by a run with `cacheErrors`, thrown again to every retry of its key. Its
 * class cannot be rebuilt (nothing stored is executed), so it is an `Error` that carries the
 * original's `name`, `message` and own data properties such as `code` or `status`: code that
 * branches on `error.code` behaves the same on the first run and on a replay.
 *
 * @example
 * try { await store.run(key, charge, { cacheErrors: (e) => e.code === 'CARD_DECLINED' }); }
 * catch (e) { if (e.code === 'CARD_DECLINED') showDeclined(); if (ReplayedError.isInstance(e)) log('replayed'); }
 */
export class ReplayedError extends Error {
  private readonly [MARKER] = true;

  constructor(stored: StoredError) {
    super(stored.message);
    for (const [key, value] of Object.entries(stored.props)) {
      if (!SKIPPED.has(key)) put(this as unknown as Record<string, unknown>, key, value);
    }
    Object.defineProperty(this, 'name', { value: stored.name, enumerable: false, writable: true, configurable: true });
  }

  /** True for a `ReplayedError` from any copy of this package. */
  static isInstance(error: unknown): error is ReplayedError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** The stored form of a thrown value; each own property is kept only if `accepts` it. */
export function toStoredError(error: unknown, accepts: (value: unknown) => boolean): StoredError {
  if (!(error instanceof Error)) {
    return { name: 'Error', message: typeof error === 'string' ? error : 'non-error value thrown', props: accepts(error) ? { value: error } : {} };
  }
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (SKIPPED.has(key)) continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (accepts(value)) put(props, key, value);
  }
  return { name: error.name, message: error.message, props };
}

/** Reads a stored error back; anything malformed still becomes a ReplayedError. */
export function fromStoredError(value: unknown): ReplayedError {
  const v = (value ?? {}) as Partial<StoredError>;
  return new ReplayedError({
    name: typeof v.name === 'string' ? v.name : 'Error',
    message: typeof v.message === 'string' ? v.message : 'operation failed',
    props: v.props !== null && typeof v.props === 'object' ? v.props : {},
  });
}
