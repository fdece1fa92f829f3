import { once } from 'node:events';
import { Inspector, serveInspector } from '@x/inspect';
import { Lock } from '@x/lock';
import { LeasedKeyQueue } from '@x/leasedkeyq';
import { Semaphore } from '@x/semaphore';
import { StreamProducer } from '@x/streams';
import type { Example } from './demo';

// `pnpm demo` prints what the inspector sees of the demo's Redis; `pnpm demo inspect` also serves
// the page (http://127.0.0.1:7380, X_INSPECT_PORT to change it) until Ctrl-C.
const example: Example = async (client) => {
  const prefix = 'demo-inspect';
  const held = await new Lock(client, 'nightly-report', { prefix }).acquire();
  const pool = await Semaphore.create(client, 'gpu', { limit: 2, prefix });
  const permits = [await pool.acquire(), await pool.acquire()];
  const q = new LeasedKeyQueue<string>(client, 'emails', { prefix });
  for (const k of ['welcome:1', 'welcome:2', 'receipt:7']) await q.put(k, 'hello');
  const item = await q.get({ leaseTimeoutMs: 120_000 });
  await new StreamProducer(client, { prefix }).publish('payments', { amount: '42' });
  try {
    const { packages } = await new Inspector(client, { prefix }).snapshot();
    for (const [pkg, items] of Object.entries(packages)) {
      if (items.length) console.log(`${pkg}: ${items.map((i) => i.ref.name).join(', ')}`);
    }
    if (!process.argv.slice(2).includes('inspect')) {
      console.log('(run `pnpm demo inspect` to open these on a page)');
      return;
    }
    const server = await serveInspector(client, { prefix, port: Number(process.env.X_INSPECT_PORT ?? 7380), allowActions: true });
    console.log(`open ${server.url} (actions allowed; Ctrl-C to stop)`);
    await once(process, 'SIGINT');
    await server.close();
  } finally {
    await held.release().catch(() => undefined);
    await Promise.all(permits.map((p) => p.release().catch(() => undefined)));
    await q.ack(item.lease).catch(() => undefined);
  }
};

export default example;
