import { keyspace } from '@x/redis-core';
import { connect, uniquePrefix, type Target, type TestClient } from '@x/testing';
import { LeasedKeyQueue, type LeasedKeyQueueOptions } from '../src';
import { QUEUE_KEYS } from '../src/scripts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh queue under a prefix of its own, and what a test needs to look at its keys. */
export function freshQueue<T = number>(client: TestClient, options: LeasedKeyQueueOptions<T> = {}, name = 'q') {
  const prefix = uniquePrefix();
  const q = new LeasedKeyQueue<T>(client, name, { prefix, ...options });
  return { q, prefix, name, other: () => new LeasedKeyQueue<T>(client, name, { prefix, ...options }) };
}

/** How many of the queue's keys exist in Redis. */
export async function keysWritten(client: TestClient, prefix: string, name = 'q'): Promise<number> {
  const ks = keyspace(prefix, 'leasedkeyq', name);
  return client.exists(QUEUE_KEYS.map((k) => ks.key(k)));
}

/** Resolves to 'pending' if `promise` has not settled after `ms`. */
export async function stateAfter(promise: Promise<unknown>, ms: number): Promise<'pending' | 'resolved' | 'rejected'> {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await sleep(ms);
  return state;
}

export { connect, type Target, type TestClient };

/**
 * The same client, counting the script calls made through it: a blocked wait
 * that polled would show up here.
 */
export function countingClient(client: TestClient): { client: TestClient; scripts: () => number } {
  let scripts = 0;
  const proxy = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      // One evalSha per script call (an EVAL follows only a NOSCRIPT).
      if (property === 'evalSha') {
        return (...args: unknown[]) => {
          scripts += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client: proxy, scripts: () => scripts };
}
