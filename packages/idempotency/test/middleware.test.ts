import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { IdempotencyStore, idempotencyMiddleware, type IdempotencyMiddleware, type IdempotentRequest } from '../src';
import { adminClient, gate, until } from './helpers';

type Handler = (req: IdempotentRequest, res: ServerResponse) => unknown;

/** A real node:http server on 127.0.0.1: parses a JSON body into req.body, then runs the middleware. */
async function serve(middleware: IdempotencyMiddleware, handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    (req as IdempotentRequest).body = text ? JSON.parse(text) : undefined;
    await middleware(req, res, (error) => {
      if (error) {
        res.statusCode = 500;
        res.end(`store error: ${String(error)}`);
        return;
      }
      return handler(req, res);
    });
  });
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

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

describe.each(TARGETS)('idempotencyMiddleware over HTTP on %s', (target) => {
  let client: TestClient;
  let admin: TestClient;
  const servers: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    client = await connect(target);
    admin = await adminClient(target);
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
    await admin.close();
  });

  async function setup(options: Parameters<typeof idempotencyMiddleware>[1] = {}, handler: Handler, storeOptions = {}) {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix, ...storeOptions });
    const server = await serve(idempotencyMiddleware(store, options), handler);
    servers.push(server);
    return { prefix, store, url: `${server.url}/charges` };
  }

  const charging = () => {
    const calls = { count: 0 };
    const handler: Handler = (req, res) => {
      calls.count += 1;
      res.statusCode = 201;
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Location', `/charges/${calls.count}`);
      res.setHeader('Set-Cookie', 'session=cookie-secret-456; HttpOnly');
      res.setHeader('X-Internal', 'internal-secret-789');
      res.end(JSON.stringify({ id: calls.count, amount: (req.body as { amount: number }).amount }));
    };
    return { calls, handler };
  };

  it('replays the first response to a retry with Idempotent-Replayed: true, running the handler once', async () => {
    const { calls, handler } = charging();
    const { url } = await setup({}, handler);
    const first = await post(url, { amount: 100 }, { 'Idempotency-Key': 'key-1' });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const firstBody = await first.json();
    const retry = await post(url, { amount: 100 }, { 'Idempotency-Key': 'key-1' });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('location')).toBe('/charges/1');
    expect(retry.headers.get('content-type')).toBe('application/json');
    expect(await retry.json()).toEqual(firstBody);
    expect(firstBody).toEqual({ id: 1, amount: 100 });
    expect(calls.count).toBe(1);
  });

  it('treats a quoted sf-string key like the bare key', async () => {
    const { calls, handler } = charging();
    const { url } = await setup({}, handler);
    await post(url, { amount: 5 }, { 'Idempotency-Key': '"abc-123"' });
    const retry = await post(url, { amount: 5 }, { 'Idempotency-Key': 'abc-123' });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(calls.count).toBe(1);
  });

  it('answers 409 with Retry-After while the first request is still running, then replays', async () => {
    const release = gate();
    const entered = gate();
    let count = 0;
    const { url } = await setup({}, async (_req, res) => {
      count += 1;
      entered.open();
      await release.promise;
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/plain');
      res.end('charged');
    });
    const first = post(url, { amount: 1 }, { 'Idempotency-Key': 'busy' });
    await entered.promise;
    const during = await post(url, { amount: 1 }, { 'Idempotency-Key': 'busy' });
    expect(during.status).toBe(409);
    expect(during.headers.get('retry-after')).toBe('1');
    expect(during.headers.get('content-type')).toBe('application/problem+json');
    expect(await during.json()).toMatchObject({ status: 409 });
    release.open();
    const done = await first;
    expect(done.status).toBe(200);
    expect(await done.text()).toBe('charged');
    const after = await post(url, { amount: 1 }, { 'Idempotency-Key': 'busy' });
    expect(after.status).toBe(200);
    expect(after.headers.get('idempotent-replayed')).toBe('true');
    expect(await after.text()).toBe('charged');
    expect(count).toBe(1);
  });

  it('answers 422 when the key is reused with a different body', async () => {
    const { calls, handler } = charging();
    const { url } = await setup({}, handler);
    expect((await post(url, { amount: 100 }, { 'Idempotency-Key': 'k' })).status).toBe(201);
    const other = await post(url, { amount: 999 }, { 'Idempotency-Key': 'k' });
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect(calls.count).toBe(1);
  });

  it('answers 400 when the key is required and missing or malformed, and passes through when optional', async () => {
    const required = charging();
    const { url } = await setup({ required: true }, required.handler);
    const missing = await post(url, { amount: 1 });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ status: 400, title: 'Idempotency-Key is missing' });
    expect((await post(url, { amount: 1 }, { 'Idempotency-Key': 'x'.repeat(256) })).status).toBe(400);
    expect((await post(url, { amount: 1 }, { 'Idempotency-Key': '""' })).status).toBe(400);
    expect(required.calls.count).toBe(0);

    const optional = charging();
    const { url: url2 } = await setup({}, optional.handler);
    expect((await post(url2, { amount: 1 })).status).toBe(201);
    expect((await post(url2, { amount: 1 })).status).toBe(201);
    expect(optional.calls.count).toBe(2);
  });

  it('never stores Authorization, Set-Cookie or any header off the allowlist', async () => {
    const { calls, handler } = charging();
    const { url, prefix } = await setup({}, handler);
    const headers = { 'Idempotency-Key': 'private', Authorization: 'Bearer auth-secret-123' };
    const first = await post(url, { amount: 7 }, headers);
    expect(first.headers.get('set-cookie')).toContain('cookie-secret-456');
    const retry = await post(url, { amount: 7 }, headers);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('set-cookie')).toBeNull();
    expect(retry.headers.get('x-internal')).toBeNull();
    expect(calls.count).toBe(1);
    // What Redis holds: status, the allowlisted headers and the body, nothing else.
    const record = await admin.hGetAll(keyspace(prefix, 'idempotency', 'http::private').key('record'));
    expect(record.state).toBe('completed');
    const stored = record.value!;
    expect(stored).toContain('/charges/1');
    for (const secret of ['auth-secret-123', 'cookie-secret-456', 'internal-secret-789', 'set-cookie', 'authorization', 'x-internal']) {
      expect(stored).not.toContain(secret);
    }
  });

  it('frees the key when the handler answers 5xx, so a retry runs the handler again', async () => {
    let count = 0;
    const { url } = await setup({}, (_req, res) => {
      count += 1;
      res.statusCode = count === 1 ? 503 : 201;
      res.end(`attempt ${count}`);
    });
    expect((await post(url, {}, { 'Idempotency-Key': 'flaky' })).status).toBe(503);
    const retry = await post(url, {}, { 'Idempotency-Key': 'flaky' });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    const again = await post(url, {}, { 'Idempotency-Key': 'flaky' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe('attempt 2');
    expect(count).toBe(2);
  });

  it('answers 500 and frees the key when a plain node:http handler throws', async () => {
    let count = 0;
    const { url } = await setup({}, async (_req, res) => {
      count += 1;
      if (count === 1) throw new Error('handler crashed');
      res.statusCode = 200;
      res.end('ok');
    });
    expect((await post(url, {}, { 'Idempotency-Key': 'crash' })).status).toBe(500);
    const retry = await post(url, {}, { 'Idempotency-Key': 'crash' });
    expect(retry.status).toBe(200);
    expect(count).toBe(2);
  });

  it('captures bodies written in chunks and headers given to writeHead', async () => {
    let count = 0;
    const { url } = await setup({}, (_req, res) => {
      count += 1;
      res.writeHead(202, { 'Content-Type': 'text/plain; charset=utf-8', ETag: '"v1"', 'Set-Cookie': 'a=b' });
      res.write('héllo ');
      res.write(Buffer.from('wörld'));
      res.end(' !', 'utf8');
    });
    const first = await post(url, {}, { 'Idempotency-Key': 'chunks' });
    expect(await first.text()).toBe('héllo wörld !');
    const retry = await post(url, {}, { 'Idempotency-Key': 'chunks' });
    expect(retry.status).toBe(202);
    expect(retry.headers.get('etag')).toBe('"v1"');
    expect(retry.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(retry.headers.get('set-cookie')).toBeNull();
    expect(await retry.text()).toBe('héllo wörld !');
    expect(count).toBe(1);
  });

  it('stores a response larger than maxBodyBytes without its body, and does not run the handler again', async () => {
    let count = 0;
    const { url } = await setup({ maxBodyBytes: 10 }, (_req, res) => {
      count += 1;
      res.statusCode = 201;
      res.setHeader('Location', '/big/1');
      res.end('x'.repeat(1_000));
    });
    expect((await (await post(url, {}, { 'Idempotency-Key': 'big' })).text()).length).toBe(1_000);
    const retry = await post(url, {}, { 'Idempotency-Key': 'big' });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('location')).toBe('/big/1');
    expect(await retry.text()).toBe('');
    expect(count).toBe(1);
  });

  it('keeps the keys of different scopes apart', async () => {
    const { calls, handler } = charging();
    const { url } = await setup({ scope: (req) => String(req.headers['x-account']) }, handler);
    await post(url, { amount: 1 }, { 'Idempotency-Key': 'same', 'X-Account': 'alice' });
    const bob = await post(url, { amount: 1 }, { 'Idempotency-Key': 'same', 'X-Account': 'bob' });
    expect(bob.headers.get('idempotent-replayed')).toBeNull();
    const alice = await post(url, { amount: 1 }, { 'Idempotency-Key': 'same', 'X-Account': 'alice' });
    expect(alice.headers.get('idempotent-replayed')).toBe('true');
    expect(calls.count).toBe(2);
  });

  it('lets GET and other methods off the list pass straight through', async () => {
    let count = 0;
    const { url } = await setup({ required: true }, (_req, res) => {
      count += 1;
      res.end('listed');
    });
    expect((await fetch(url, { headers: { 'Idempotency-Key': 'g' } })).status).toBe(200);
    expect((await fetch(url)).status).toBe(200);
    expect(count).toBe(2);
  });

  it('stores the response before sending it, so a client that saw it always gets the replay', async () => {
    // A client whose script calls can be held back: the complete is delayed once the handler ran.
    const events: string[] = [];
    let slow = false;
    const delayed = {
      evalSha: async (sha: string, options?: { keys?: string[]; arguments?: string[] }) => {
        const wasSlow = slow;
        if (wasSlow) await new Promise((r) => setTimeout(r, 200));
        const reply = await client.evalSha(sha, options);
        if (wasSlow) events.push('stored');
        return reply;
      },
      eval: (script: string, options?: { keys?: string[]; arguments?: string[] }) => client.eval(script, options),
      duplicate: () => client.duplicate(),
    };
    const store = new IdempotencyStore(delayed, { prefix: uniquePrefix() });
    const server = await serve(idempotencyMiddleware(store), (_req, res) => {
      slow = true;
      res.statusCode = 201;
      res.end('created');
    });
    servers.push(server);
    const response = await post(server.url, { n: 1 }, { 'Idempotency-Key': 'ordered' });
    events.push('response');
    expect(await response.text()).toBe('created');
    expect(events).toEqual(['stored', 'response']);
    slow = false;
    expect(await store.begin('http::ordered')).toMatchObject({ status: 'completed', result: { status: 201 } });
  });

  it('works as Express-shaped middleware: body parser before it, next(err) to an error handler after it', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix });
    const idem = idempotencyMiddleware(store, { required: true });
    let count = 0;
    type Mw = (req: IdempotentRequest, res: ServerResponse, next: (err?: unknown) => void) => unknown;
    const jsonParser: Mw = (req, _res, next) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        req.body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        next();
      });
    };
    const route: Mw = (req, res, next) => {
      count += 1;
      if ((req.body as { fail?: boolean }).fail && count === 1) return next(new Error('route failed'));
      res.statusCode = 201;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(JSON.stringify({ order: count }), 'utf8');
    };
    const errorHandler = (err: unknown, _req: IdempotentRequest, res: ServerResponse) => {
      res.statusCode = 500;
      res.end(String(err));
    };
    const chain: Mw[] = [jsonParser, idem as Mw, route];
    const server = createServer((req, res) => {
      const request = req as IdempotentRequest;
      request.originalUrl = req.url;
      const step = (i: number, err?: unknown): void => {
        if (err !== undefined) return errorHandler(err, request, res);
        const layer = chain[i];
        if (layer) void layer(request, res, (e?: unknown) => step(i + 1, e));
      };
      step(0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
    expect((await post(url, { fail: true }, { 'Idempotency-Key': 'e1' })).status).toBe(500);
    const retried = await post(url, { fail: true }, { 'Idempotency-Key': 'e1' });
    expect(retried.status).toBe(201);
    const replay = await post(url, { fail: true }, { 'Idempotency-Key': 'e1' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual({ order: 2 });
    expect((await post(url, { fail: false }, { 'Idempotency-Key': 'e1' })).status).toBe(422);
    expect((await post(url, {})).status).toBe(400);
    expect(count).toBe(2);
  });

  it('stops renewing the claim of a request whose client went away, so the key frees after leaseMs', async () => {
    const entered = gate();
    const { store, url } = await setup(
      {},
      () => {
        entered.open();
        // Never answers.
      },
      { leaseMs: 300 },
    );
    const controller = new AbortController();
    const request = fetch(url, {
      method: 'POST',
      headers: { 'Idempotency-Key': 'gone' },
      body: '{}',
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await entered.promise;
    expect(await store.begin('http::gone')).toMatchObject({ status: 'in_progress' });
    controller.abort();
    expect(await request).toMatchObject({ name: 'AbortError' });
    await until(async () => (await store.begin('http::gone')).status === 'acquired');
  });
});
