import type { TestClient } from '@x/testing';
import { streamSpace } from '../src/keys';

/** Resolves once `check()` is true; rejects after `timeoutMs` (a guard against hangs, not a timing assertion). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** Rejects if `promise` has not settled after `timeoutMs` (a hang guard). */
export function within<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), timeoutMs);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** The keys a consumer of `stream`/`group` uses under `prefix` (default space). */
export function keysOf(prefix: string, stream: string, group = 'g', space?: string) {
  const s = streamSpace(prefix, space);
  return {
    stream: s.stream(stream),
    group: s.group(stream, group),
    dead: s.stream(`${stream}:dead`),
    out: (name: string) => s.stream(name),
    space: s,
  };
}

/** Every entry of a stream: `{ id, fields }`, in order. */
export async function entries(client: TestClient, key: string): Promise<Array<{ id: string; fields: Record<string, string> }>> {
  const list = (await client.xRange(key, '-', '+')) as Array<{ id: string; message: Record<string, string> }>;
  return list.map((e) => ({ id: e.id, fields: { ...e.message } }));
}

/** The group hash as stored (state, pos, epoch, ...). */
export async function groupHash(client: TestClient, key: string): Promise<Record<string, string>> {
  return { ...((await client.hGetAll(key)) as Record<string, string>) };
}

export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
