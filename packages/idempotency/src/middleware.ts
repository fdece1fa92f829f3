import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { InvalidArgumentError, XRedisError, assertInteger } from '@x/redis-core';
import { ABANDON, type Acquired, type IdempotencyStore } from './store';

/**
 * A request as the middleware reads it: node:http's, or Express's (which adds `body`, `originalUrl`).
 *
 * @example
 * (req as IdempotentRequest).body = await readJson(req);
 */
export type IdempotentRequest = IncomingMessage & { body?: unknown; originalUrl?: string };

/**
 * `(req, res, next)`: Express middleware, also callable from a plain node:http handler.
 *
 * @example
 * const idem: IdempotencyMiddleware = idempotencyMiddleware(store);
 * await idem(req, res, (err) => (err ? fail(res, err) : handle(req, res)));
 */
export type IdempotencyMiddleware = (req: IdempotentRequest, res: ServerResponse, next: (error?: unknown) => unknown) => Promise<void>;

/**
 * Options of {@link idempotencyMiddleware}.
 *
 * @example
 * idempotencyMiddleware(store, { required: true, scope: (req) => accountOf(req), storeHeaders: ['content-type', 'location'] });
 */
export interface IdempotencyMiddlewareOptions {
  /**
   * Answer 400 to a request of one of `methods` without the header (else it passes through).
   * @default false
   */
  required?: boolean;
  /**
   * The request header carrying the key (a bare value, or an sf-string in quotes as in the IETF
   * draft); 1 to 255 printable ASCII characters, else 400.
   * @default 'Idempotency-Key'
   */
  header?: string;
  /**
   * Response headers stored and replayed; every other header (`Set-Cookie`, ...) is never stored.
   * `Content-Length`, `Transfer-Encoding` and `Connection` are never stored.
   * @default ['content-type', 'location', 'etag']
   */
  storeHeaders?: string[];
  /**
   * Largest response body stored. A larger response is stored without its body: replays carry
   * its status and headers and an empty body (the operation is not run twice).
   * @default 1_048_576
   */
  maxBodyBytes?: number;
  /**
   * The part of the request that must match for a replay; any JSON-like value (hashed
   * canonically), may be async. A different fingerprint under the same key gets 422.
   * With plain node:http, read the body first (set `req.body`) or read it here.
   * @default (req) => ({ method: req.method, url: req.originalUrl ?? req.url, body: req.body })
   */
  fingerprint?: (req: IdempotentRequest) => unknown;
  /**
   * Keeps one client's keys apart from another's (e.g. the authenticated account id), so that
   * a key guessed or reused by another client never replays this client's response.
   * @default no scope: keys are shared by every client of the store
   */
  scope?: (req: IdempotentRequest) => string | undefined | Promise<string | undefined>;
  /**
   * Methods the middleware applies to; others pass straight through.
   * @default ['POST', 'PATCH']
   */
  methods?: string[];
  /**
   * Which response statuses are stored and replayed. Others free the key, so a retry runs again.
   * @default (status) => status < 500 && status !== 408 && status !== 429
   */
  storeStatus?: (status: number) => boolean;
  /** Told when storing a response failed (Redis unreachable, claim lost); the response is still sent. */
  onStoreError?: (error: unknown, req: IdempotentRequest) => void;
}

/** The stored form of a response. */
interface StoredResponse {
  status: number;
  headers: Array<[string, string | string[]]>;
  /** Base64 body, or null when it was larger than `maxBodyBytes`. */
  body: string | null;
}

const NEVER_STORED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * HTTP middleware after the IETF Idempotency-Key draft: the first request with a key runs the
 * handler and its response (status, allowlisted headers, body up to a cap) is stored; a retry
 * with the same key and request gets the stored response with `Idempotent-Replayed: true`; a
 * retry while the first is running gets 409 with `Retry-After`; the same key with another
 * request gets 422; a missing key gets 400 when `required`. The response is stored before it is
 * sent, so a client that has seen it always gets the replay. Store errors go to `next(error)`.
 *
 * @example
 * // Express
 * app.post('/charges', express.json(), idempotencyMiddleware(store, { required: true }), chargeHandler);
 * // node:http
 * const idem = idempotencyMiddleware(store);
 * createServer((req, res) => idem(req, res, (err) => (err ? fail(res, err) : handle(req, res))));
 */
export function idempotencyMiddleware(store: IdempotencyStore, options: IdempotencyMiddlewareOptions = {}): IdempotencyMiddleware {
  // Duck-typed rather than instanceof, so that a store from the package's other build (ESM/CJS) fits.
  if (store === null || typeof store !== 'object' || typeof store.begin !== 'function' || typeof store.complete !== 'function') {
    throw new InvalidArgumentError('store must be an IdempotencyStore');
  }
  const required = options.required ?? false;
  if (typeof required !== 'boolean') throw new InvalidArgumentError('required must be a boolean');
  const header = options.header ?? 'Idempotency-Key';
  if (typeof header !== 'string' || !HEADER_NAME.test(header)) throw new InvalidArgumentError('header must be an HTTP header name');
  const headerName = header.toLowerCase();
  const allowed = new Set(headerList('storeHeaders', options.storeHeaders ?? ['content-type', 'location', 'etag']));
  for (const name of NEVER_STORED) allowed.delete(name);
  const maxBodyBytes = assertInteger('maxBodyBytes', options.maxBodyBytes ?? 1_048_576, 0);
  const methods = new Set(headerList('methods', options.methods ?? ['POST', 'PATCH']).map((m) => m.toUpperCase()));
  const fingerprint = fn('fingerprint', options.fingerprint) ?? defaultFingerprint;
  const scope = fn('scope', options.scope);
  const storeStatus = fn('storeStatus', options.storeStatus) ?? defaultStoreStatus;
  const onStoreError = fn('onStoreError', options.onStoreError) ?? (() => undefined);

  return async function idempotency(req, res, next) {
    let key: string;
    let claim: Acquired;
    try {
      if (!methods.has((req.method ?? '').toUpperCase())) return void next();
      const raw = req.headers[headerName];
      if (raw === undefined) {
        if (required) return problem(res, 400, `${header} is missing`, `This operation requires an ${header} header.`);
        return void next();
      }
      const parsed = parseKey(raw);
      if (parsed === undefined) {
        return problem(res, 400, `${header} is malformed`, `${header} must be 1 to 255 printable ASCII characters.`);
      }
      const scoped = scope ? await scope(req) : undefined;
      key = `http:${scoped === undefined ? '' : encodeURIComponent(scoped)}:${parsed}`;
      let found;
      try {
        found = await store.begin(key, { fingerprint: await fingerprint(req) });
      } catch (error) {
        if (XRedisError.isInstance(error) && error.code === 'IDEMPOTENCY_FINGERPRINT_MISMATCH') {
          return problem(res, 422, `${header} was used with a different request`, 'Use a new key for a new request.');
        }
        throw error;
      }
      if (found.status === 'completed') return replay(res, found.result);
      if (found.status === 'in_progress') {
        res.setHeader('Retry-After', '1');
        return problem(res, 409, 'The first request with this key is still being processed', 'Retry this request later.');
      }
      if (found.status === 'failed') return problem(res, 500, 'The first request with this key failed', 'Use a new key to try again.');
      claim = found;
    } catch (error) {
      return void next(error);
    }

    const storeKey = key;
    const { token } = claim;
    let settled = false;
    const settle = async (status: number, headers: OutgoingHttpHeaders, body: Buffer | null): Promise<void> => {
      if (settled) return;
      settled = true;
      try {
        if (!storeStatus(status)) {
          await store.fail(storeKey, token, { retryable: true });
          return;
        }
        const stored: StoredResponse = { status, headers: pickHeaders(headers, allowed), body: body === null ? null : body.toString('base64') };
        await store.complete(storeKey, token, stored);
      } catch (error) {
        store[ABANDON]?.(token);
        safely(() => onStoreError(error, req));
      }
    };
    const ended = capture(res, maxBodyBytes, settle);
    res.once('close', () => {
      // The client went away before a response: stop renewing, so that the claim lapses after
      // leaseMs unless the handler still ends its response (which then completes it).
      if (!ended()) store[ABANDON]?.(token);
    });

    const crashed = (error: unknown): void => {
      if (ended()) return;
      if (!res.headersSent) {
        problem(res, 500, 'Internal Server Error', 'The request failed; it may be retried with the same key.');
        return;
      }
      settled = true;
      void store.fail(storeKey, token, { retryable: true }).catch((e: unknown) => safely(() => onStoreError(e, req)));
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

function replay(res: ServerResponse, value: unknown): void {
  const stored = value as Partial<StoredResponse> | null;
  const status = stored?.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 999 || !Array.isArray(stored?.headers)) {
    return problem(res, 500, 'The stored response cannot be replayed', 'The key holds a value that is not an HTTP response.');
  }
  res.statusCode = status;
  for (const entry of stored.headers) {
    if (Array.isArray(entry) && typeof entry[0] === 'string' && HEADER_NAME.test(entry[0])) res.setHeader(entry[0], entry[1] as string);
  }
  res.setHeader('Idempotent-Replayed', 'true');
  res.end(typeof stored.body === 'string' ? Buffer.from(stored.body, 'base64') : undefined);
}

function problem(res: ServerResponse, status: number, title: string, detail: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/problem+json');
  res.end(JSON.stringify({ type: 'about:blank', title, status, detail }));
}

function pickHeaders(headers: OutgoingHttpHeaders, allowed: Set<string>): Array<[string, string | string[]]> {
  const out: Array<[string, string | string[]]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !allowed.has(name.toLowerCase())) continue;
    out.push([name.toLowerCase(), Array.isArray(value) ? value.map(String) : String(value)]);
  }
  return out;
}

/** The key from the header: a bare value or an sf-string ("..."), 1 to 255 printable ASCII. */
function parseKey(raw: string | string[]): string | undefined {
  if (Array.isArray(raw)) return raw.length === 1 ? parseKey(raw[0]!) : undefined;
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (key.length === 0 || key.length > 255 || !/^[\x20-\x7e]+$/.test(key)) return undefined;
  return key;
}

function defaultFingerprint(req: IdempotentRequest): unknown {
  return { method: req.method, url: req.originalUrl ?? req.url, body: req.body };
}

function defaultStoreStatus(status: number): boolean {
  return status < 500 && status !== 408 && status !== 429;
}

function headerList(label: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && HEADER_NAME.test(v))) {
    throw new InvalidArgumentError(`${label} must be an array of header names or methods`);
  }
  return value.map((v: string) => v.toLowerCase());
}

function fn<F>(label: string, value: F | undefined): F | undefined {
  if (value === undefined || typeof value === 'function') return value;
  throw new InvalidArgumentError(`${label} must be a function`);
}

function safely(call: () => void): void {
  try {
    call();
  } catch {
    // A user callback's failure must not break the response.
  }
}
