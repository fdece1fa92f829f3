// scope and fingerprint receive each framework's own request type: these callbacks use methods
// that only that framework's request has (type-checked by tsc, and called for real here).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import Koa from 'koa';
import { connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyStore } from '../src';
import { idempotency as forExpress } from '../src/express';
import { idempotency as forFastify } from '../src/fastify';
import { idempotency as forHono } from '../src/hono';
import { idempotency as forKoa } from '../src/koa';

declare global {
  namespace Express {
    interface Request {
      account?: string;
    }
  }
}

async function urlOf(server: Server): Promise<string> {
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
}

const post = (url: string, account: string, body = '{"a":1}') =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'Idempotency-Key': 'shared', 'X-Account': account }, body });

describe('typed scope and fingerprint callbacks', () => {
  let client: TestClient;
  const closers: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    client = await connect('standalone');
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });
  const store = () => new IdempotencyStore(client, { prefix: uniquePrefix() });
  const closing = (server: Server) => () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });

  /** Two accounts with one key: each runs once; a retry of either is replayed. */
  async function expectScoped(url: string, calls: () => number) {
    expect((await post(url, 'alice')).status).toBe(201);
    expect((await post(url, 'bob')).headers.get('idempotent-replayed')).toBeNull();
    expect((await post(url, 'alice')).headers.get('idempotent-replayed')).toBe('true');
    expect(calls()).toBe(2);
  }

  it('Express: Request with the app’s own augmentations', async () => {
    let calls = 0;
    const app = express();
    app.use((req, _res, next) => {
      req.account = req.get('x-account');
      next();
    });
    app.post('/orders', forExpress(store(), { scope: (req) => req.account, fingerprint: (req) => ({ path: req.path, q: req.query }) }), (_req, res) => {
      calls += 1;
      res.status(201).end();
    });
    const server = createServer(app).listen(0, '127.0.0.1');
    closers.push(closing(server));
    await expectScoped(await urlOf(server), () => calls);
  });

  it('Fastify: FastifyRequest', async () => {
    let calls = 0;
    const app = Fastify();
    await app.register(forFastify, { store: store(), scope: (request) => String(request.headers['x-account']), fingerprint: (request) => request.routeOptions.url });
    app.post('/orders', async (_request, reply) => {
      calls += 1;
      return reply.code(201).send();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    await expectScoped(await urlOf(app.server), () => calls);
  });

  it('Hono: Context', async () => {
    let calls = 0;
    const app = new Hono();
    app.post('/orders', forHono(store(), { scope: (c) => c.req.header('x-account'), fingerprint: (c) => c.req.path }), (c) => {
      calls += 1;
      return c.body(null, 201);
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    closers.push(closing(server));
    await expectScoped(await urlOf(server), () => calls);
  });

  it('Koa: Context', async () => {
    let calls = 0;
    const app = new Koa();
    app.use(forKoa(store(), { scope: (ctx) => ctx.get('x-account'), fingerprint: (ctx) => ctx.path }));
    app.use((ctx) => {
      calls += 1;
      ctx.status = 201;
    });
    const server = createServer(app.callback()).listen(0, '127.0.0.1');
    closers.push(closing(server));
    await expectScoped(await urlOf(server), () => calls);
  });
});
