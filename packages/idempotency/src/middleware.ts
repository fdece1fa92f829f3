import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createEngine, problem, type HttpIncoming, type HttpReply, type IdempotencyContext, type IdempotencyHttpOptions } from './engine';
import { readNodeBody } from './node-body';
import type { IdempotencyStore } from './store';

/**
 * A request as the middleware reads it: node:http's, or Express's (which adds `body`,
 * `originalUrl`). The middleware sets `idempotency` on a claimed request.
 *
 * @example
 * const { key, signal } = (req as IdempotentRequest).idempotency!;
 */
export type IdempotentRequest = IncomingMessage & { body?: unknown; originalUrl?: string; rawBody?: unknown; idempotency?: IdempotencyContext };

/**
 * `(req, res, next)`: Express middleware, also callable from a plain node:http handler.
 *
 * @example
 * const idem: IdempotencyMiddleware = idempotencyMiddleware(store);
 * await idem(req, res, (err) => (err ? fail(res, err) : handle(req, res)));
 */
export type IdempotencyMiddleware<Req extends IncomingMessage = IdempotentRequest> = (
  req: Req,
  res: ServerResponse,
  next: (error?: unknown) => unknown,
) => Promise<void>;

/**
 * Options of {@link idempotencyMiddleware}: those of every adapter, with callbacks that receive
 * the request type the middleware is used with.
 *
 * @example
 * idempotencyMiddleware(store, { required: true, scope: (req) => accountOf(req), storeHeaders: ['content-type', 'location'] });
 */
export type IdempotencyMiddlewareOptions<Req extends IncomingMessage = IdempotentRequest> = IdempotencyHttpOptions<Req>;

/**
 * HTTP middleware after the IETF Idempotency-Key draft: the first request with a key runs the
 * handler and its response (status, allowlisted headers, body up to a cap) is stored; a retry
 * with the same key and request gets the stored response with `Idempotent-Replayed: true`; a
 * retry while the first is running gets 409 with `Retry-After`; the same key with another
 * request gets 422; a missing key gets 400 when `required`. The request body is part of the
 * fingerprint: `req.body` when a parser ran before the middleware, else the middleware reads
 * the raw body itself (up to `maxRequestBytes`, 413 beyond) and puts it back on the stream for
 * the parser after it. The response is stored before it is sent, so a client that has seen it
 * always gets the replay. The handler finds its claim on `req.idempotency` (and
 * `res.locals.idempotency` on Express). Store errors go to `next(error)`.
 *
 * @example
 * // Express, before or after express.json()
 * app.post('/charges', idempotencyMiddleware(store, { required: true }), express.json(), chargeHandler);
 * // node:http
 * const idem = idempotencyMiddleware(store);
 * createServer((req, res) => idem(req, res, (err) => (err ? fail(res, err) : handle(req, res))));
 */
export function idempotencyMiddleware<Req extends IncomingMessage = IdempotentRequest>(
  store: IdempotencyStore,
  options: IdempotencyMiddlewareOptions<Req> = {},
): IdempotencyMiddleware<Req> {
  const engine = createEngine<Req>(store, options);
  const { maxBodyBytes } = engine;

  return async function idempotency(req, res, next) {
    const request = req as Req & IdempotentRequest;
    let claim;
    try {
      const incoming: HttpIncoming<Req> = {
        req,
        method: req.method ?? '',
        url: request.originalUrl ?? req.url ?? '',
        header: (name) => req.headers[name],
        body: async (max) => {
          if (request.body !== undefined) return { parsed: request.body };
          const raw = await readNodeBody(request, max);
          return 'tooLarge' in raw ? raw : { bytes: raw.bytes, contentType: req.headers['content-type'] };
        },
      };
      const started = await engine.start(incoming);
      if (started.kind === 'pass') return void next();
      if (started.kind === 'reply') {
        if (started.reply.status === 413) req.resume();
        return send(res, started.reply);
      }
      claim = started.claim;
    } catch (error) {
      return void next(error);
    }

    request.idempotency = claim.context;
    const locals = (res as ServerResponse & { locals?: Record<string, unknown> }).locals;
    if (locals !== null && typeof locals === 'object') locals.idempotency = claim.context;
    const ended = capture(res, maxBodyBytes, (status, headers, body) => claim.settle(status, headers as Record<string, unknown>, body));
    res.once('close', () => {
      // The client went away before a response: stop renewing, so that the claim lapses after
      // leaseMs unless the handler still ends its response (which then completes it).
      if (!ended()) claim.abandon();
    });

    const crashed = (error: unknown): void => {
      if (ended()) return;
      if (!res.headersSent) {
        send(res, problem(500, 'Internal Server Error', 'The request failed; it may be retried with the same key.'));
        return;
      }
      void claim.release();
      res.destroy(error instanceof Error ? error : undefined);
    };
    try {
      const result = next() as unknown;
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, crashed);
      }
    } catch (error) {
      crashed(error);
    }
  };
}

/**
 * Wraps `writeHead`, `write` and `end` of `res`: the body is collected (up to `maxBodyBytes`) and
 * `end` is held until `onEnd` has stored the response. Returns whether `end` was called.
 */
function capture(
  res: ServerResponse,
  maxBodyBytes: number,
  onEnd: (status: number, headers: OutgoingHttpHeaders, body: Buffer | null) => Promise<void>,
): () => boolean {
  const chunks: Buffer[] = [];
  let size = 0;
  let overflow = false;
  let ended = false;
  const headHeaders: OutgoingHttpHeaders = {};
  const original = { writeHead: res.writeHead, write: res.write, end: res.end };
  const add = (chunk: unknown, encoding: unknown): void => {
    if (chunk === undefined || chunk === null || overflow) return;
    const buffer =
      typeof chunk === 'string'
        ? Buffer.from(chunk, (typeof encoding === 'string' ? encoding : 'utf8') as BufferEncoding)
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          : undefined;
    if (!buffer) return;
    size += buffer.length;
    if (size > maxBodyBytes) {
      overflow = true;
      chunks.length = 0;
      return;
    }
    chunks.push(Buffer.from(buffer));
  };
  res.writeHead = function writeHead(this: ServerResponse, ...args: unknown[]) {
    const headers = args.find((a, i) => i > 0 && a !== null && typeof a === 'object');
    if (Array.isArray(headers)) {
      // Either [[name, value], ...] or [name, value, name, value, ...].
      if (headers.every((h) => Array.isArray(h))) for (const [k, v] of headers as Array<[string, string]>) headHeaders[String(k).toLowerCase()] = v;
      else for (let i = 0; i + 1 < headers.length; i += 2) headHeaders[String(headers[i]).toLowerCase()] = headers[i + 1] as string;
    } else if (headers) {
      for (const [k, v] of Object.entries(headers)) headHeaders[k.toLowerCase()] = v as string;
    }
    return (original.writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];
  res.write = function write(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    add(chunk, typeof rest[0] === 'string' ? rest[0] : undefined);
    return (original.write as (...a: unknown[]) => boolean).apply(this, [chunk, ...rest]);
  } as ServerResponse['write'];
  res.end = function end(this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: unknown) {
    if (typeof chunk === 'function') {
      callback = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    add(chunk, encoding);
    ended = true;
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.end = original.end;
    const headers = { ...res.getHeaders(), ...headHeaders };
    const finish = (): void => {
      (original.end as (...a: unknown[]) => ServerResponse).call(res, chunk, encoding, callback);
    };
    onEnd(res.statusCode, headers, overflow ? null : Buffer.concat(chunks)).then(finish, finish);
    return res;
  } as ServerResponse['end'];
  return () => ended;
}

/** Sends a reply of the engine (a replay, or a problem). */
function send(res: ServerResponse, reply: HttpReply): void {
  res.statusCode = reply.status;
  for (const [name, value] of reply.headers) res.setHeader(name, value);
  res.end(reply.body);
}

