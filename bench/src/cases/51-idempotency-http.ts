import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import Koa from 'koa';
import { WakeBus } from '@x/redis-core';
import { IdempotencyStore, idempotencyMiddleware } from '@x/idempotency';
import { idempotency as forExpress } from '@x/idempotency/express';
import { idempotency as forFastify } from '@x/idempotency/fastify';
import { idempotency as forHono } from '@x/idempotency/hono';
import { idempotency as forKoa } from '@x/idempotency/koa';
import type { BenchCase, BenchContext, Result } from '../harness';

const ITERATIONS = 3_000;
const BODY = JSON.stringify({ customer: 'c_42', amount: 4_200, currency: 'EUR', items: [1, 2, 3] });
const ANSWER = JSON.stringify({ orderId: 'ord_8f3a1c', status: 'created' });

/**
 * The HTTP middleware's cost per request on a replayed key, per framework: a POST with a JSON
 * body and an Idempotency-Key that was completed before (one begin script that replays the
 * stored response) against the same framework's bare handler (no middleware, no Redis), both
 * over loopback with fetch (keep-alive), one request in flight. The ratio is the figure that
 * matters; the gap in p50 is the middleware's added latency.
 */
const benchCase: BenchCase = {
  name: 'idempotency: HTTP middleware, replayed key vs bare handler',
  async run(ctx) {
    const client = await ctx.client();
    const results: Result[] = [];
    for (const framework of FRAMEWORKS) {
      const store = new IdempotencyStore(client, { prefix: `bench${Date.now().toString(36)}` });
      const app = await framework.start(store);
      try {
        results.push(...(await measure(ctx, framework.name, app.url)));
      } finally {
        await app.close();
      }
    }
    await WakeBus.close(client);
    return results;
  },
};
export default benchCase;

async function measure(ctx: BenchContext, name: string, base: string): Promise<Result[]> {
  const post = async (path: string, key?: string) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      body: BODY,
    });
    await response.arrayBuffer();
    return response;
  };
  const first = await post('/idem', 'bench-key');
  if (first.status !== 201) throw new Error(`${name}: the first request answered ${first.status}`);
  const replay = await post('/idem', 'bench-key');
  if (replay.headers.get('idempotent-replayed') !== 'true') throw new Error(`${name}: the retry was not replayed`);
  const scenario = `idempotency HTTP: ${name}`;
  const bare = await ctx.measure(`${name}: bare handler`, () => post('/bare'), { iterations: ITERATIONS, baseline: true });
  const replayed = await ctx.measure(`${name}: middleware, replayed key`, () => post('/idem', 'bench-key'), {
    iterations: ITERATIONS,
    note: 'one begin script per request',
  });
  return [bare, replayed].map((r) => ({ ...r, case: scenario }));
}

interface Running {
  url: string;
  close(): Promise<unknown>;
}

async function listening(server: Server): Promise<Running> {
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

const FRAMEWORKS: Array<{ name: string; start(store: IdempotencyStore): Promise<Running> }> = [
  {
    name: 'node:http',
    async start(store) {
      const idem = idempotencyMiddleware(store);
      const handle = async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        let text = '';
        for await (const chunk of req) text += chunk;
        JSON.parse(text);
        res.writeHead(201, { 'content-type': 'application/json' }).end(ANSWER);
      };
      const server = createServer((req, res) => {
        if (req.url === '/bare') return void handle(req, res);
        void idem(req, res, () => handle(req, res));
      }).listen(0, '127.0.0.1');
      return listening(server);
    },
  },
  {
    name: 'Express',
    async start(store) {
      const app = express();
      const handler: express.RequestHandler = (_req, res) => void res.status(201).type('json').send(ANSWER);
      app.post('/bare', express.json(), handler);
      app.post('/idem', forExpress(store), express.json(), handler);
      return listening(app.listen(0, '127.0.0.1'));
    },
  },
  {
    name: 'Fastify',
    async start(store) {
      const app = Fastify();
      const handler = async (_request: unknown, reply: import('fastify').FastifyReply) => reply.code(201).type('application/json').send(ANSWER);
      app.post('/bare', handler);
      await app.register(async (scope) => {
        await scope.register(forFastify, { store });
        scope.post('/idem', handler);
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
    },
  },
  {
    name: 'Hono',
    async start(store) {
      const app = new Hono();
      const handler = async (c: import('hono').Context) => {
        await c.req.json();
        return c.body(ANSWER, 201, { 'content-type': 'application/json' });
      };
      app.post('/bare', handler);
      app.post('/idem', forHono(store), handler);
      return listening(serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server);
    },
  },
  {
    name: 'Koa',
    async start(store) {
      const app = new Koa();
      const idem = forKoa(store);
      app.use(async (ctx, next) => (ctx.path === '/idem' ? idem(ctx, next) : next()));
      app.use(async (ctx) => {
        let text = '';
        for await (const chunk of ctx.req) text += chunk;
        JSON.parse(text);
        ctx.type = 'json';
        ctx.body = ANSWER;
        ctx.status = 201;
      });
      return listening(app.listen(0, '127.0.0.1'));
    },
  },
];
