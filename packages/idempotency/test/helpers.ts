export { until } from '@x/testing';
import { createClient } from 'redis';
import { adminUrl, clusterNodes, connect, type Target, type TestClient } from '@x/testing';

/** Every key under `prefix` on every node of `target` (to prove that nothing was written). */
export async function keysUnder(target: Target, prefix: string): Promise<string[]> {
  const urls = target === 'standalone' ? [adminUrl()] : clusterNodes().map((n) => `redis://${n}`);
  const found: string[] = [];
  for (const url of urls) {
    const admin = createClient({ url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      found.push(...(await admin.keys(`${prefix}*`)));
    } finally {
      await admin.close();
    }
  }
  return found.sort();
}

/** A promise with its resolve function, to hold an operation open until the test lets it go. */
export function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * A client with every right on `target`, for what the tests inspect or plant behind the store's
 * back (raw records, counters). The suite may run as a least-privilege ACL user whose rule covers
 * only what the package itself sends (`REDIS_ADMIN_URL` then names the default user).
 */
export async function adminClient(target: Target): Promise<TestClient> {
  if (target === 'cluster') return connect('cluster');
  const admin = createClient({ url: adminUrl() });
  admin.on('error', () => undefined);
  await admin.connect();
  return admin as unknown as TestClient;
}
