// One app per framework, each serving POST /orders through that framework's adapter on a real
// HTTP server on 127.0.0.1. Every app's handler does the same thing, through the framework's
// own idiom: it reads the JSON body, counts its calls, may wait on a gate or throw (as `control`
// says), sets a cookie and an internal header, and answers 201 with the call number, the body
// and the claim it reached.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import Koa from 'koa';
import { idempotencyMiddleware, type IdempotencyHttpOptions, type IdempotencyStore, type IdempotentRequest } from '../src';
import { idempotency as expressIdempotency } from '../src/express';
import { idempotency as fastifyIdempotency } from '../src/fastify';
import { idempotency as honoIdempotency, type IdempotencyVariables } from '../src/hono';
import { idempotency as koaIdempotency } from '../src/koa';

export interface Control {
  /** Calls of the handler so far. */
  calls: number;
  /** When set, the handler waits for it before answering. */
  hold?: Promise<void>;
  /** Opened when the handler starts. */
  entered?: () => void;
  /** The handler throws on the calls listed here (1-based). */
  throwOn: number[];
}

export interface App {
  url: string;
  control: Control;
  close(): Promise<void>;
}

/** What every handler answers. */
function answer(control: Control, body: unknown, claim: { key: string; signal: AbortSignal } | null | undefined) {
  return {
    status: 201,
    headers: {
      'content-type': 'application/json',
      location: `/orders/${control.calls}`,
      'set-cookie': 'session=cookie-secret-456; HttpOnly',
      'x-internal': 'internal-secret-789',
    },
    body: JSON.stringify({ n: control.calls, body, key: claim?.key ?? null, aborted: claim?.signal.aborted ?? null }),
  };
}

async function enter(control: Control): Promise<void> {
  control.calls += 1;
  control.entered?.();
  if (control.hold) await control.hold;
  if (control.throwOn.includes(control.calls)) throw new Error(`handler failed on call ${control.calls}`);
}

async function listen(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/orders`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The options every framework shares (the callbacks take each framework's own request). */
export type CommonOptions = Omit<IdempotencyHttpOptions<unknown>, 'scope' | 'fingerprint' | 'onStoreError'>;

export type Framework = {
  name: string;
  start(store: IdempotencyStore, options: CommonOptions): Promise<App>;
};

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

export const FRAMEWORKS: Framework[] = [
  {
    name: 'node:http',
    async start(store, options) {
      const control: Control = { calls: 0, throwOn: [] };
      const idem = idempotencyMiddleware(store, options);
      const server = createServer((req: IdempotentRequest, res: ServerResponse) => {
        void idem(req, res, async (error) => {
          if (error) return void res.writeHead(500).end();
          const body = await readJson(req);
          await enter(control);
          const out = answer(control, body, req.idempotency);
          res.writeHead(out.status, out.headers).end(out.body);
        });
      });
      return { control, ...(await listen(server)) };
    },
  },
  {
    name: 'Express',
    async start(store, options) {
      const control: Control = { calls: 0, throwOn: [] };
      const app = express();
      // The middleware before express.json(): it reads the raw body and hands it on.
      app.post('/orders', expressIdempotency(store, options), express.json(), async (req, res, next) => {
        try {
          await enter(control);
        } catch (error) {
          return next(error);
        }
        const out = answer(control, req.body, res.locals.idempotency);
        res.status(out.status).set(out.headers).send(out.body);
      });
      return { control, ...(await listen(createServer(app))) };
    },
  },
  {
    name: 'Fastify',
    async start(store, options) {
      const control: Control = { calls: 0, throwOn: [] };
      const app = Fastify();
      await app.register(fastifyIdempotency, { store, ...options });
      app.post('/orders', async (request, reply) => {
        await enter(control);
        const out = answer(control, request.body, request.idempotency);
        return reply.code(out.status).headers(out.headers).send(out.body);
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { control, ...(await listen(app.server)), close: () => app.close() };
    },
  },
  {
    name: 'Hono',
    async start(store, options) {
      const control: Control = { calls: 0, throwOn: [] };
      const app = new Hono<{ Variables: IdempotencyVariables }>();
      app.post('/orders', honoIdempotency(store, options), async (c) => {
        const body = await c.req.json();
        await enter(control);
        const out = answer(control, body, c.get('idempotency'));
        return c.body(out.body, 201, out.headers);
      });
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
      await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
      return { control, ...(await listen(server)) };
    },
  },
  {
    name: 'Koa',
    async start(store, options) {
      const control: Control = { calls: 0, throwOn: [] };
      const app = new Koa();
      app.silent = true;
      app.use(koaIdempotency(store, options));
      app.use(async (ctx) => {
        // No body parser: the handler reads the stream the middleware handed on.
        const body = await readJson(ctx.req);
        await enter(control);
        const out = answer(control, body, ctx.state.idempotency);
        ctx.set(out.headers);
        ctx.body = out.body;
        ctx.status = out.status;
      });
      return { control, ...(await listen(createServer(app.callback()))) };
    },
  },
];
