import type { Context, MiddlewareHandler } from 'hono';
import { createEngine, type BodySource, type HttpReply, type IdempotencyContext, type IdempotencyHttpOptions } from './engine';
import type { IdempotencyStore } from './store';

export type { IdempotencyContext, IdempotencyHttpOptions } from './engine';

/**
 * The variables the middleware sets: `c.get('idempotency')` on a request whose key it claimed.
 *
 * @example
 * const app = new Hono<{ Variables: IdempotencyVariables }>();
 */
export interface IdempotencyVariables {
  idempotency: IdempotencyContext;
}

/**
 * Hono middleware after the IETF Idempotency-Key draft (runs on every Hono runtime, and on
 * Node through @hono/node-server). It reads the body itself (up to `maxRequestBytes`, 413
 * beyond) into Hono's body cache, so `c.req.json()`, `c.req.text()` and the validators still
 * work after it; the response is stored before it is sent. `scope` and `fingerprint` receive
 * Hono's `Context`; the claim is `c.get('idempotency')`.
 *
 * @example
 * import { idempotency } from '@x/idempotency/hono';
 * const app = new Hono<{ Variables: IdempotencyVariables }>();
 * app.post('/orders', idempotency(store, { required: true }), async (c) => c.json(await createOrder(await c.req.json()), 201));
 */
export function idempotency(store: IdempotencyStore, options: IdempotencyHttpOptions<Context> = {}): MiddlewareHandler<{ Variables: IdempotencyVariables }> {
  const engine = createEngine<Context>(store, options);
  return async (c, next) => {
    const url = new URL(c.req.url);
    const started = await engine.start({
      req: c,
      method: c.req.method,
      url: url.pathname + url.search,
      header: (name) => c.req.header(name),
      body: (max) => readBody(c, max),
    });
    if (started.kind === 'pass') return next();
    if (started.kind === 'reply') return toResponse(started.reply);
    const { claim } = started;
    c.set('idempotency', claim.context);
    try {
      await next();
    } catch (error) {
      await claim.release();
      throw error;
    }
    const res = c.res;
    let body: Buffer | null = null;
    if (res.body === null) body = Buffer.alloc(0);
    else {
      const bytes = Buffer.from(await res.clone().arrayBuffer());
      body = bytes.length > engine.maxBodyBytes ? null : bytes;
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => (headers[name] = value));
    await claim.settle(res.status, headers, body);
    return undefined;
  };
}

/** Reads the raw body up to `max` bytes and leaves it in Hono's body cache for the handler. */
async function readBody(c: Context, max: number): Promise<BodySource> {
  const contentType = c.req.header('content-type');
  const stream = c.req.raw.body;
  if (stream === null) return { bytes: undefined, contentType };
  // At run time Hono keeps promises of what each body method read (its type says methods).
  const cache = c.req.bodyCache as Record<string, Promise<unknown> | undefined>;
  if (Object.keys(cache).length > 0) return { bytes: Buffer.from(await c.req.arrayBuffer()), contentType };
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return { tooLarge: true };
    }
    chunks.push(value);
  }
  const bytes = Buffer.concat(chunks);
  cache.arrayBuffer = Promise.resolve(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { bytes: bytes.length > 0 ? bytes : undefined, contentType };
}

function toResponse(reply: HttpReply): Response {
  const headers = new Headers();
  for (const [name, value] of reply.headers) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return new Response(reply.body ? new Uint8Array(reply.body) : null, { status: reply.status, headers });
}
