/**
 * Helpers for worker scripts run by `spawnWorker`. `point(name)` announces a named point to the
 * parent; when the parent asked to crash there, the worker stops and waits to be SIGKILLed.
 */
export async function point(name: string): Promise<void> {
  process.stdout.write(`@@point ${name}\n`);
  if (process.env.X_CRASH_AT === name) await new Promise<never>(() => setInterval(() => undefined, 60_000));
}

/** Sends a JSON value to the parent (read back as `worker.reports`). */
export function report(value: unknown): void {
  process.stdout.write(`@@report ${JSON.stringify(value)}\n`);
}
