import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { RateLimiter, rateLimitMiddleware, type RateLimitMiddleware, type RateLimitedRequest } from '../src';

/** A real node:http server on 127.0.0.1 running the middleware, then a handler answering 200 "ok". */
async function serve(middleware: RateLimitMiddleware): Promise<{ url: string; handled: () => number; close(): Promise<void> }> {
  let handled = 0;
  const server = createServer(async (req, res: ServerResponse) => {
    await middleware(req as RateLimitedRequest, res, (error?: unknown) => {
      if (error) {
        res.statusCode = 500;
        res.end(`error: ${(error as Error).message}`);
        return;
      }
      handled += 1;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    handled: () => handled,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.each(TARGETS)('rateLimitMiddleware over HTTP on %s', (target) => {
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

  async function setup(middleware: RateLimitMiddleware) {
    const server = await serve(middleware);
    servers.push(server);
    return server;
  }

  it('admits up to the limit with RateLimit-Policy and RateLimit fields, then answers 429 with Retry-After', async () => {
    const limiter = new RateLimiter(client, 'http', { prefix: uniquePrefix(), limits: [{ limit: 3, windowMs: 60_000 }] });
    const server = await setup(rateLimitMiddleware(limiter, { key: (req) => String(req.headers['x-user']) }));
    const seen: Array<{ status: number; policy: string | null; limit: string | null }> = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(server.url, { headers: { 'x-user': 'u1' } });
      expect(await res.text()).toBe('ok');
      seen.push({ status: res.status, policy: res.headers.get('ratelimit-policy'), limit: res.headers.get('ratelimit') });
    }
    expect(seen.map((s) => s.status)).toEqual([200, 200, 200]);
    expect(seen.every((s) => s.policy === '"3-in-60000ms";q=3;w=60')).toBe(true);
    expect(seen.map((s) => /;r=(\d+);t=(\d+)$/.exec(s.limit ?? '')?.[1])).toEqual(['2', '1', '0']);
    for (const s of seen) {
      const t = Number(/;t=(\d+)$/.exec(s.limit ?? '')?.[1]);
      expect(t).toBeGreaterThanOrEqual(1);
      expect(t).toBeLessThanOrEqual(60);
    }
    const refused = await fetch(server.url, { headers: { 'x-user': 'u1' } });
    expect(refused.status).toBe(429);
    expect(await refused.text()).toBe('Too Many Requests');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-policy')).toBe('"3-in-60000ms";q=3;w=60');
    expect(refused.headers.get('ratelimit')).toMatch(/^"3-in-60000ms";r=0;t=\d+$/);
    expect(server.handled()).toBe(3);
    // Another key is counted apart.
    expect((await fetch(server.url, { headers: { 'x-user': 'u2' } })).status).toBe(200);
  });

  it('lists every limit, takes an async key and a cost per request', async () => {
    const limiter = new RateLimiter(client, 'http', {
      prefix: uniquePrefix(),
      limits: [
        { limit: 10, windowMs: 1_000 },
        { limit: 4, windowMs: 3_600_000 },
      ],
    });
    const server = await setup(
      rateLimitMiddleware(limiter, {
        key: async (req) => {
          await new Promise((r) => setTimeout(r, 1));
          return `user:${String(req.headers['x-user'])}`;
        },
        cost: (req) => (req.method === 'POST' ? 3 : 1),
      }),
    );
    const post = await fetch(server.url, { method: 'POST', headers: { 'x-user': 'a' } });
    expect(post.status).toBe(200);
    expect(post.headers.get('ratelimit-policy')).toBe('"10-in-1000ms";q=10;w=1, "4-in-3600000ms";q=4;w=3600');
    expect(post.headers.get('ratelimit')).toMatch(/^"10-in-1000ms";r=7;t=\d+, "4-in-3600000ms";r=1;t=\d+$/);
    const second = await fetch(server.url, { method: 'POST', headers: { 'x-user': 'a' } });
    expect(second.status).toBe(429);
    expect((await fetch(server.url, { headers: { 'x-user': 'a' } })).status).toBe(200);
    expect(server.handled()).toBe(2);
  });

  it('passes a Redis error to next, or with failOpen admits the request and reports it', async () => {
    const broken = await connect(target);
    await broken.close();
    const limiter = new RateLimiter(broken, 'http', { prefix: uniquePrefix(), limits: [{ limit: 3, windowMs: 60_000 }] });
    const strict = await setup(rateLimitMiddleware(limiter, { key: () => 'k' }));
    expect((await fetch(strict.url)).status).toBe(500);
    expect(strict.handled()).toBe(0);
    const errors: unknown[] = [];
    const open = await setup(rateLimitMiddleware(limiter, { key: () => 'k', failOpen: true, onError: (e) => errors.push(e) }));
    const res = await fetch(open.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(open.handled()).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it('passes a bad key or cost to next as InvalidArgumentError, also with failOpen', async () => {
    const limiter = new RateLimiter(client, 'http', { prefix: uniquePrefix(), limits: [{ limit: 3, windowMs: 60_000 }] });
    const errors: unknown[] = [];
    const middleware = rateLimitMiddleware(limiter, { key: (req) => String(req.headers['x-user'] ?? ''), cost: 1, failOpen: true });
    const server = await setup(async (req, res, next) => middleware(req, res, (e) => (errors.push(e), next(e))));
    expect((await fetch(server.url)).status).toBe(500);
    expect(errors[0]).toBeInstanceOf(InvalidArgumentError);
    expect(() => rateLimitMiddleware(limiter, {} as never)).toThrow(InvalidArgumentError);
  });

  it('lets onLimited write the 429 response', async () => {
    const limiter = new RateLimiter(client, 'http', { prefix: uniquePrefix(), limits: [{ limit: 1, windowMs: 60_000 }] });
    const server = await setup(
      rateLimitMiddleware(limiter, {
        key: () => 'k',
        onLimited: (_req, res, decision) => {
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ error: 'slow down', retryAfterMs: decision.retryAfterMs > 0 }));
        },
      }),
    );
    expect((await fetch(server.url)).status).toBe(200);
    const refused = await fetch(server.url);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(await refused.json()).toEqual({ error: 'slow down', retryAfterMs: true });
  });
});
