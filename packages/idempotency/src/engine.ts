import { InvalidArgumentError, XRedisError, assertInteger } from '@x/redis-core';
import { ABANDON } from './abandon';
import type { IdempotencyStore } from './store';

/**
 * Options of the HTTP middleware, the same for every framework; `Req` is the framework's own
 * request type (node:http's `IncomingMessage`, Express's `Request`, Fastify's `FastifyRequest`,
 * Hono's `Context`, Koa's `Context`).
 *
 * @example
 * const options: IdempotencyHttpOptions<Request> = { required: true, scope: (req) => req.user.id };
 */
export interface IdempotencyHttpOptions<Req> {
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
   * `Content-Length`, `Transfer-Encoding`, `Connection` and `Set-Cookie` are never stored.
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
   * Largest request body the middleware reads for the default fingerprint when no parser has
   * set one (declared by Content-Length or as it arrives); a larger request gets 413 and the
   * handler does not run. Not used with an explicit `fingerprint`.
   * @default 1_048_576
   */
  maxRequestBytes?: number;
  /**
   * The part of the request that must match for a replay; any JSON-like value (hashed
   * canonically), may be async. A different fingerprint under the same key gets 422. Replaces
   * the default entirely: the body is then not read by the middleware.
   * @default method, URL and body: the parsed body when a parser ran before, else the raw body
   * (canonical JSON when the content type is JSON, the bytes otherwise)
   */
  fingerprint?: (req: Req) => unknown;
  /**
   * Keeps one client's keys apart from another's (e.g. the authenticated account id), so that
   * a key guessed or reused by another client never replays this client's response.
   * @default no scope: keys are shared by every client of the store
   */
  scope?: (req: Req) => string | undefined | Promise<string | undefined>;
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
  onStoreError?: (error: unknown, req: Req) => void;
}

/**
 * What the handler of a claimed request can reach (`req.idempotency` on node:http and Express,
 * `res.locals.idempotency` too on Express, `request.idempotency` on Fastify,
 * `c.get('idempotency')` on Hono, `ctx.state.idempotency` on Koa).
 *
 * @example
 * await quota.consume(account, amount, { idempotencyKey: req.idempotency.key, signal: req.idempotency.signal });
 */
export interface IdempotencyContext {
  /** The store key of this request: `http:<scope>:<Idempotency-Key>`; reuse it downstream. */
  key: string;
  /** The claim's token. */
  token: string;
  /** Aborts (with an `IdempotencyLeaseLostError`) when the claim's lease is lost. */
  signal: AbortSignal;
}

/** A response as stored, and as the middleware sends it. */
export interface HttpReply {
  status: number;
  headers: Array<[string, string | string[]]>;
  /** The body, or undefined for none. */
  body: Buffer | undefined;
}

/** The request body for the default fingerprint, as the adapter found it. */
export type BodySource = { parsed: unknown } | { bytes: Buffer | undefined; contentType: string | undefined } | { tooLarge: true };

/** What an adapter tells the engine about a request. */
export interface HttpIncoming<Req> {
  req: Req;
  method: string;
  url: string;
  header(name: string): string | string[] | undefined;
  /** The body, read at most up to `maxBytes`; called only for the default fingerprint. */
  body(maxBytes: number): Promise<BodySource>;
}

/** The first step: the request passes through, is answered at once, or carries this key. */
export type Checked = { kind: 'pass' } | { kind: 'reply'; reply: HttpReply } | { kind: 'key'; key: string };

/** A request whose key is now claimed: run the handler, then `settle` with its response. */
export interface ClaimedRequest {
  context: IdempotencyContext;
  /** Stores the response (or frees the key when `storeStatus` says so); never throws. */
  settle(status: number, headers: Record<string, unknown>, body: Buffer | null): Promise<void>;
  /** Frees the key for a retry (the handler failed); never throws. */
  release(): Promise<void>;
  /** Stops renewing the claim (the client went away): it lapses after `leaseMs`. */
  abandon(): void;
  readonly settled: boolean;
}

export type Started = Exclude<Checked, { kind: 'key' }> | { kind: 'claimed'; claim: ClaimedRequest };

/** The stored form of a response. */
interface StoredResponse {
  status: number;
  headers: Array<[string, string | string[]]>;
  /** Base64 body, or null when it was larger than `maxBodyBytes`. */
  body: string | null;
}

const NEVER_STORED = ['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'set-cookie', 'authorization'];
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export interface Engine<Req> {
  readonly maxBodyBytes: number;
  readonly maxRequestBytes: number;
  /** Whether the request's method is one the middleware applies to. */
  applies(method: string): boolean;
  /** Method, key and declared size: what can be decided before the body is read. */
  check(incoming: HttpIncoming<Req>): Checked;
  /** Fingerprint and claim (or replay) the key `check` found; store errors are thrown. */
  claim(incoming: HttpIncoming<Req>, key: string): Promise<Started>;
  /** `check` then `claim`. */
  start(incoming: HttpIncoming<Req>): Promise<Started>;
}

/**
 * The framework-independent part of every adapter: options, key parsing, fingerprints, the
 * claim, the answers (400, 409, 413, 422, replays) and storing the response.
 */
export function createEngine<Req>(store: IdempotencyStore, options: IdempotencyHttpOptions<Req> = {}): Engine<Req> {
  // Duck-typed rather than instanceof, so that a store from the package's other build (ESM/CJS) fits.
  if (store === null || typeof store !== 'object' || typeof store.begin !== 'function' || typeof store.complete !== 'function') {
    throw new InvalidArgumentError('store must be an IdempotencyStore');
  }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
  const required = options.required ?? false;
  if (typeof required !== 'boolean') throw new InvalidArgumentError('required must be a boolean');
  const header = options.header ?? 'Idempotency-Key';
  if (typeof header !== 'string' || !HEADER_NAME.test(header)) throw new InvalidArgumentError('header must be an HTTP header name');
  const headerName = header.toLowerCase();
  const allowed = new Set(headerList('storeHeaders', options.storeHeaders ?? ['content-type', 'location', 'etag']));
  for (const name of NEVER_STORED) allowed.delete(name);
  const maxBodyBytes = assertInteger('maxBodyBytes', options.maxBodyBytes ?? 1_048_576, 0);
  const maxRequestBytes = assertInteger('maxRequestBytes', options.maxRequestBytes ?? 1_048_576, 0);
  const methods = new Set(headerList('methods', options.methods ?? ['POST', 'PATCH']).map((m) => m.toUpperCase()));
  const fingerprint = fn('fingerprint', options.fingerprint);
  const scope = fn('scope', options.scope);
  const storeStatus = fn('storeStatus', options.storeStatus) ?? defaultStoreStatus;
  const onStoreError = fn('onStoreError', options.onStoreError) ?? (() => undefined);

  const check = (incoming: HttpIncoming<Req>): Checked => {
    if (!methods.has(incoming.method.toUpperCase())) return { kind: 'pass' };
    const raw = incoming.header(headerName);
    if (raw === undefined) {
      if (required) return { kind: 'reply', reply: problem(400, `${header} is missing`, `This operation requires an ${header} header.`) };
      return { kind: 'pass' };
    }
    const parsed = parseKey(raw);
    if (parsed === undefined) {
      return { kind: 'reply', reply: problem(400, `${header} is malformed`, `${header} must be 1 to 255 printable ASCII characters.`) };
    }
    if (!fingerprint) {
      const length = incoming.header('content-length');
      if (typeof length === 'string' && Number(length) > maxRequestBytes) return { kind: 'reply', reply: tooLarge(maxRequestBytes) };
    }
    return { kind: 'key', key: parsed };
  };

  const claim = async (incoming: HttpIncoming<Req>, parsed: string): Promise<Started> => {
    const { req } = incoming;
    const scoped = scope ? await scope(req) : undefined;
    const key = `http:${scoped === undefined ? '' : encodeURIComponent(scoped)}:${parsed}`;
    let print: unknown;
    if (fingerprint) {
      print = await fingerprint(req);
    } else {
      const source = await incoming.body(maxRequestBytes);
      if ('tooLarge' in source) return { kind: 'reply', reply: tooLarge(maxRequestBytes) };
      print = { method: incoming.method, url: incoming.url, body: 'parsed' in source ? source.parsed : canonicalBody(source.bytes, source.contentType) };
    }
    let found;
    try {
      found = await store.begin(key, { fingerprint: print });
    } catch (error) {
      if (XRedisError.isInstance(error) && error.code === 'IDEMPOTENCY_FINGERPRINT_MISMATCH') {
        return { kind: 'reply', reply: problem(422, `${header} was used with a different request`, 'Use a new key for a new request.') };
      }
      throw error;
    }
    if (found.status === 'completed') return { kind: 'reply', reply: replayOf(found.result) };
    if (found.status === 'in_progress') {
      const reply = problem(409, 'The first request with this key is still being processed', 'Retry this request later.');
      // One second, not the lease's remainder: the first request usually ends well before its lease.
      reply.headers.push(['retry-after', '1']);
      return { kind: 'reply', reply };
    }
    if (found.status === 'failed') return { kind: 'reply', reply: problem(500, 'The first request with this key failed', 'Use a new key to try again.') };

    const { token } = found;
    let settled = false;
    const report = (error: unknown): void => {
      store[ABANDON]?.(token);
      safely(() => onStoreError(error, req));
    };
    const claimed: ClaimedRequest = {
      context: { key, token, signal: found.signal },
      get settled() {
        return settled;
      },
      async settle(status, headers, body) {
        if (settled) return;
        settled = true;
        try {
          if (!storeStatus(status)) {
            await store.fail(key, token, { retryable: true });
            return;
          }
          const stored: StoredResponse = { status, headers: pickHeaders(headers, allowed), body: body === null ? null : body.toString('base64') };
          await store.complete(key, token, stored);
        } catch (error) {
          report(error);
        }
      },
      async release() {
        if (settled) return;
        settled = true;
        await store.fail(key, token, { retryable: true }).catch(report);
      },
      abandon() {
        if (!settled) store[ABANDON]?.(token);
      },
    };
    return { kind: 'claimed', claim: claimed };
  };

  return {
    maxBodyBytes,
    maxRequestBytes,
    applies: (method) => methods.has(method.toUpperCase()),
    check,
    claim,
    async start(incoming) {
      const checked = check(incoming);
      return checked.kind === 'key' ? claim(incoming, checked.key) : checked;
    },
  };
}

/** The body part of the default fingerprint: parsed JSON (so key order and spacing do not count), else the bytes. */
function canonicalBody(bytes: Buffer | undefined, contentType: string | undefined): unknown {
  if (bytes === undefined || bytes.length === 0) return undefined;
  if (contentType !== undefined && JSON_TYPE.test(contentType)) {
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch {
      // Not JSON after all: the bytes decide (the app's parser will refuse it anyway).
    }
  }
  return bytes;
}

function replayOf(value: unknown): HttpReply {
  const stored = value as Partial<StoredResponse> | null;
  const status = stored?.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 999 || !Array.isArray(stored?.headers)) {
    return problem(500, 'The stored response cannot be replayed', 'The key holds a value that is not an HTTP response.');
  }
  const headers: Array<[string, string | string[]]> = [];
  for (const entry of stored.headers) {
    if (Array.isArray(entry) && typeof entry[0] === 'string' && HEADER_NAME.test(entry[0]) && !NEVER_STORED.includes(entry[0].toLowerCase())) {
      headers.push([entry[0], entry[1] as string | string[]]);
    }
  }
  headers.push(['idempotent-replayed', 'true']);
  return { status, headers, body: typeof stored.body === 'string' ? Buffer.from(stored.body, 'base64') : undefined };
}

/** An RFC 9457 problem+json reply. */
export function problem(status: number, title: string, detail: string): HttpReply {
  return {
    status,
    headers: [['content-type', 'application/problem+json']],
    body: Buffer.from(JSON.stringify({ type: 'about:blank', title, status, detail })),
  };
}

function tooLarge(max: number): HttpReply {
  const reply = problem(413, 'The request body is too large', `An idempotent request body may be at most ${max} bytes.`);
  reply.headers.push(['connection', 'close']);
  return reply;
}

function pickHeaders(headers: Record<string, unknown>, allowed: Set<string>): Array<[string, string | string[]]> {
  const out: Array<[string, string | string[]]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || value === null || !allowed.has(name.toLowerCase())) continue;
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

/** Runs a user callback whose failure must not break the response. */
export function safely(call: () => void): void {
  try {
    call();
  } catch {
    // A user callback's failure must not break the response.
  }
}
