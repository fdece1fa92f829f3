import type { Context, Middleware } from 'koa';
import { createEngine, type HttpReply, type IdempotencyContext, type IdempotencyHttpOptions } from './engine';
import { readNodeBody } from './node-body';
import type { IdempotencyStore } from './store';

export type { IdempotencyContext, IdempotencyHttpOptions } from './engine';

declare module 'koa' {
  interface DefaultState {
    /** Set by `@x/idempotency/koa` on a request whose key it claimed. */
    idempotency?: IdempotencyContext;
  }
}

/**
 * Koa middleware after the IETF Idempotency-Key draft. Before a body parser it reads the raw
 * body itself (up to `maxRequestBytes`, 413 beyond) and puts it back on `ctx.req`, so the
 * parser after it still works; after one, it fingerprints `ctx.request.body`. The response
 * (`ctx.status`, allowlisted headers, `ctx.body`) is stored before Koa sends it. `scope` and
 * `fingerprint` receive Koa's `Context`; the claim is `ctx.state.idempotency`.
 *
 * @example
 * import { idempotency } from '@x/idempotency/koa';
 * app.use(idempotency(store, { required: true }));
 */
export function idempotency(store: IdempotencyStore, options: IdempotencyHttpOptions<Context> = {}): Middleware {
  const engine = createEngine<Context>(store, options);
  return async (ctx, next) => {
    const started = await engine.start({
      req: ctx,
      method: ctx.method,
      url: ctx.originalUrl,
      header: (name) => ctx.req.headers[name],
      body: async (max) => {
        const parsed = (ctx.request as { body?: unknown }).body;
        if (parsed !== undefined) return { parsed };
        const raw = await readNodeBody(ctx.req, max);
        return 'tooLarge' in raw ? raw : { bytes: raw.bytes, contentType: ctx.get('content-type') || undefined };
      },
    });
    if (started.kind === 'pass') return next();
    if (started.kind === 'reply') {
      if (started.reply.status === 413) ctx.req.resume();
      return answer(ctx, started.reply);
    }
    const { claim } = started;
    ctx.state.idempotency = claim.context;
    try {
      await next();
    } catch (error) {
      await claim.release();
      throw error;
    }
    const bytes = bodyBytes(ctx.body);
    await claim.settle(ctx.status, ctx.response.headers as Record<string, unknown>, bytes !== null && bytes.length > engine.maxBodyBytes ? null : bytes);
  };
}

/** `ctx.body` as Koa will send it, or null for a stream (stored without its body). */
function bodyBytes(body: unknown): Buffer | null {
  if (body === null || body === undefined) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (typeof (body as { pipe?: unknown }).pipe === 'function' || body instanceof ReadableStream || body instanceof Blob || body instanceof Response) return null;
  return Buffer.from(JSON.stringify(body));
}

function answer(ctx: Context, reply: HttpReply): void {
  for (const [name, value] of reply.headers) ctx.set(name, value);
  const typed = reply.headers.some(([name]) => name === 'content-type');
  ctx.body = reply.body ?? Buffer.alloc(0);
  // Koa gives a Buffer body a type of its own, and a 204 to an empty one: keep what was stored.
  if (!typed) ctx.remove('Content-Type');
  ctx.status = reply.status;
}
