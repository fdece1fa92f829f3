import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IdempotencyStore, idempotencyMiddleware, type IdempotentRequest } from '@x/idempotency';
import type { Example } from './demo';

// A payment endpoint that must charge once per Idempotency-Key, however often a client retries.
// The server listens on 127.0.0.1 on a free port and the example sends real requests to it.
const demo: Example = async (client) => {
  const store = new IdempotencyStore(client, { prefix: `demo${Date.now().toString(36)}`, ttlMs: 60_000, leaseMs: 5_000 });
  const idempotent = idempotencyMiddleware(store, { required: true });
  let charges = 0;

  const server = createServer(async (req, res) => {
    (req as IdempotentRequest).body = await readJson(req);
    await idempotent(req, res, async (error) => {
      if (error) {
        res.statusCode = 503;
        res.end('store unavailable');
        return;
      }
      const { amount } = (req as IdempotentRequest).body as { amount: number };
      charges += 1;
      await new Promise((r) => setTimeout(r, 200)); // the payment provider takes a while
      res.statusCode = 201;
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Location', `/charges/ch_${charges}`);
      res.setHeader('Set-Cookie', 'session=never-replayed');
      res.end(JSON.stringify({ id: `ch_${charges}`, amount }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/charges`;
  console.log(`payment server on ${url}`);

  const charge = async (label: string, key: string | undefined, amount: number): Promise<void> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { 'Idempotency-Key': key } : {}) },
      body: JSON.stringify({ amount }),
    });
    const replayed = response.headers.get('idempotent-replayed') === 'true';
    const extra = response.status === 409 ? ` (Retry-After: ${response.headers.get('retry-after')} s)` : '';
    console.log(`${label.padEnd(34)} -> ${response.status}${replayed ? ' replayed' : ''}${extra} ${await response.text()}`);
  };

  try {
    // The first request and an impatient retry sent while it is still being processed.
    const first = charge('POST key=order-1 amount=100', 'order-1', 100);
    await new Promise((r) => setTimeout(r, 50));
    await charge('retry while the first runs', 'order-1', 100);
    await first;
    await charge('retry after it finished', 'order-1', 100);
    await charge('retry again', 'order-1', 100);
    await charge('same key, different amount', 'order-1', 250);
    await charge('no key at all', undefined, 100);
    await charge('POST key=order-2 amount=250', 'order-2', 250);
    console.log(`the card was charged ${charges} times for 2 distinct keys`);
    // The plain API, for code that is not behind HTTP.
    const receipt = await store.run('email:order-1', async () => ({ sentAt: new Date(), to: 'ada@example.com' }));
    const again = await store.run('email:order-1', async () => ({ sentAt: new Date(0), to: 'nobody' }));
    console.log(`store.run replays the first result, Date and all: ${again.sentAt.toISOString() === receipt.sentAt.toISOString()}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
};
export default demo;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}
