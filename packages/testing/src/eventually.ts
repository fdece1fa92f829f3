/** The outcome of a promise, without throwing: for asserting on waits that may reject. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Resolves with `{ ok, value }` or `{ ok: false, error }` once `promise` settles. */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/**
 * Resolves once `check()` is true, checking every few milliseconds; rejects after `timeoutMs`.
 * A guard against hangs only: tests assert states and orders, never how long this took.
 */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
