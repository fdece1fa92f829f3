import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyStore, idempotencyMiddleware, type IdempotentRequest } from '../src';

async function listen(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

describe.each(TARGETS)('idempotencyMiddleware without a parsed body on %s', (target) => {
  let client: TestClient;
  const servers: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    client = await connect(target);
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  /** Plain node:http: the middleware first, the handler reads the body itself afterwards. */
  async function plain(options: Parameters<typeof idempotencyMiddleware>[1] = {}) {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    const idem = idempotencyMiddleware(store, options);
    const seen: string[] = [];
    const server = await listen(
      createServer((req, res) => {
        void idem(req, res, async (error) => {
          if (error) return void res.writeHead(500).end(String(error));
          let text = '';
          for await (const chunk of req) text += chunk;
          seen.push(text);
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ n: seen.length, got: JSON.parse(text || 'null') }));
        });
      }),
    );
    servers.push(server);
    return { url: `${server.url}/orders`, seen, store };
  }

  it('refuses the same key with a different body with 422 on plain node:http, and the handler still reads the body', async () => {
    const { url, seen } = await plain();
    const first = await post(url, '{"amount":100}', { 'Idempotency-Key': 'k1' });
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ n: 1, got: { amount: 100 } });
    const other = await post(url, '{"amount":999}', { 'Idempotency-Key': 'k1' });
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect(seen).toEqual(['{"amount":100}']);
  });

  it('replays the same JSON body whatever its key order and whitespace', async () => {
    const { url, seen } = await plain();
    expect((await post(url, '{"a":1,"b":[1,2]}', { 'Idempotency-Key': 'k2' })).status).toBe(201);
    const retry = await post(url, '{ "b": [1, 2], "a": 1 }', { 'Idempotency-Key': 'k2' });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    const reordered = await post(url, '{"a":1,"b":[2,1]}', { 'Idempotency-Key': 'k2' });
    expect(reordered.status).toBe(422);
    expect(seen).toHaveLength(1);
  });

  it('fingerprints a non-JSON body by its bytes', async () => {
    const { url, seen } = await plain();
    const text = { 'content-type': 'text/plain', 'Idempotency-Key': 'k3' };
    expect((await post(url, '"x"', text)).status).toBe(201);
    expect((await post(url, '"x"', text)).headers.get('idempotent-replayed')).toBe('true');
    expect((await post(url, ' "x"', text)).status).toBe(422);
    expect(seen).toEqual(['"x"']);
  });

  it('answers 413 to a body larger than maxRequestBytes, declared or streamed, without running the handler', async () => {
    const { url, seen, store } = await plain({ maxRequestBytes: 16 });
    const big = JSON.stringify({ pad: 'x'.repeat(100) });
    const declared = await post(url, big, { 'Idempotency-Key': 'k4' });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ status: 413 });
    // Chunked, no Content-Length: the limit applies to what arrives.
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Idempotency-Key': 'k5' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(seen).toEqual([]);
    expect(await store.inspect('http::k4')).toEqual({ status: 'absent' });
    // A small body under the same limit is run.
    expect((await post(url, '{}', { 'Idempotency-Key': 'k6' })).status).toBe(201);
    expect(seen).toEqual(['{}']);
  });

  it('uses only an explicit fingerprint option instead of the body', async () => {
    const { url, seen } = await plain({ fingerprint: () => 'always the same' });
    expect((await post(url, '{"amount":1}', { 'Idempotency-Key': 'k7' })).status).toBe(201);
    expect((await post(url, '{"amount":2}', { 'Idempotency-Key': 'k7' })).headers.get('idempotent-replayed')).toBe('true');
    expect(seen).toHaveLength(1);
  });

  it('with Express, runs before express.json() and express.json() still parses the body', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    const app = express();
    const bodies: unknown[] = [];
    app.post('/orders', idempotencyMiddleware(store, { required: true }), express.json(), (req, res) => {
      bodies.push(req.body);
      res.status(201).json({ order: bodies.length, body: req.body });
    });
    const server = await listen(createServer(app));
    servers.push(server);
    const url = `${server.url}/orders`;
    const first = await post(url, '{"amount":100}', { 'Idempotency-Key': 'e1' });
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ order: 1, body: { amount: 100 } });
    const retry = await post(url, '{"amount": 100}', { 'Idempotency-Key': 'e1' });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual({ order: 1, body: { amount: 100 } });
    expect((await post(url, '{"amount":999}', { 'Idempotency-Key': 'e1' })).status).toBe(422);
    // A body larger than the parser's own chunk size still reaches express.json() whole.
    const large = { items: Array.from({ length: 3_000 }, (_, i) => `item-${i}`) };
    const big = await post(url, JSON.stringify(large), { 'Idempotency-Key': 'e2' });
    expect(big.status).toBe(201);
    expect((await big.json()).body).toEqual(large);
    expect(bodies).toEqual([{ amount: 100 }, large]);
  });

  it('with Express, uses req.body when express.json() ran first', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    const app = express();
    let count = 0;
    app.post('/orders', express.json(), idempotencyMiddleware(store), (req: IdempotentRequest, res: express.Response) => {
      count += 1;
      res.status(201).json({ count, body: req.body });
    });
    const server = await listen(createServer(app));
    servers.push(server);
    const url = `${server.url}/orders`;
    expect((await post(url, '{"a":1}', { 'Idempotency-Key': 'p1' })).status).toBe(201);
    expect((await post(url, '{"a":2}', { 'Idempotency-Key': 'p1' })).status).toBe(422);
    expect(count).toBe(1);
  });
});
