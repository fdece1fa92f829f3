import { adminUrl, clusterNodes, type Target } from '@x/testing';

export { settle, until } from '@x/testing';
import { createClient } from 'redis';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Admin {
  sendCommand(args: string[]): Promise<unknown>;
  evalSha(sha: string, options?: { keys?: string[]; arguments?: string[] }): Promise<unknown>;
  eval(script: string, options?: { keys?: string[]; arguments?: string[] }): Promise<unknown>;
  duplicate(): unknown;
}

async function onNodes<T>(target: Target, fn: (admin: Admin) => Promise<T>): Promise<T[]> {
  const urls = target === 'standalone' ? [adminUrl()] : clusterNodes().map((n) => `redis://${n}`);
  return Promise.all(
    urls.map(async (url) => {
      const admin = createClient({ url });
      admin.on('error', () => undefined);
      await admin.connect();
      try {
        return await fn(admin as unknown as Admin);
      } finally {
        await admin.close();
      }
    }),
  );
}

/** Subscriber connections (plain or sharded) of the clients connected under `name`. */
export async function subscribers(target: Target, name: string): Promise<string[]> {
  const lists = await onNodes(target, async (admin) => String(await admin.sendCommand(['CLIENT', 'LIST'])));
  return lists
    .flatMap((list) => list.split('\n'))
    .filter((line) => line.includes(` name=${name} `) && / s?sub=[1-9]/.test(line))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)![1]!);
}

/**
 * Kills the one subscriber connection of the clients connected under `name` and, in the same
 * write on the same connection, runs `meanwhile` there: the server executes all of it before the
 * subscriber can reconnect, so messages published by `meanwhile` are lost to it. Resolves with the
 * number of connections killed.
 */
export async function killSubscriberWhile(
  target: Target,
  name: string,
  meanwhile: (admin: Admin) => Array<Promise<unknown>>,
): Promise<number> {
  const killed = await onNodes(target, async (admin) => {
    const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
    const line = list.split('\n').find((l) => l.includes(` name=${name} `) && / s?sub=[1-9]/.test(l));
    if (!line) return 0;
    const id = /(?:^|\s)id=(\d+)/.exec(line)![1]!;
    const [n] = await Promise.all([admin.sendCommand(['CLIENT', 'KILL', 'ID', id]), ...meanwhile(admin)]);
    return Number(n);
  });
  return killed.reduce((a, b) => a + b, 0);
}

export type { Admin };
