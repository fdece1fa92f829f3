import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { InvalidArgumentError, XRedisError, type RedisClientLike } from '@x/redis-core';
import { Inspector, assertPackage, type InspectorOptions, type Snapshot } from './inspector';
import type { Action } from './packages';

/** Options of {@link serveInspector}. */
export interface ServeOptions extends InspectorOptions {
  /**
   * Port to listen on (0: any free port).
   * @default 7380
   */
  port?: number;
  /**
   * Address to bind. Anything but a loopback address exposes the page to the network.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Allow the operator's actions (release a lock by its token, drop a dead waiter, re-drive dead
   * letters). Off: the page and the API are read-only.
   * @default false
   */
  allowActions?: boolean;
  /**
   * How often the snapshot (and the charts' history) is refreshed, in ms.
   * @default 1000
   */
  intervalMs?: number;
  /** Where each action is logged, one line each. @default console.error */
  log?: (line: string) => void;
}

/** A running inspector page. */
export interface InspectorServer {
  /** `http://host:port/`. */
  readonly url: string;
  readonly inspector: Inspector;
  /** Stops refreshing and closes the server (the Redis client stays the caller's). */
  close(): Promise<void>;
}

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function assetDir(): string {
  // Built: the page sits beside this file in dist. From the sources (tests): in ../page.
  return existsSync(join(__dirname, 'app.js')) ? __dirname : join(__dirname, '..', 'page');
}

/**
 * Serves the inspector's page and JSON API on `host:port` (127.0.0.1:7380 by default):
 * `GET /api/resources` (every resource, with the charts' history), `GET /api/<package>/<name>`
 * (`?space=` for streams), and `POST /api/actions` when `allowActions` is on.
 *
 * @example
 * const server = await serveInspector(client, { prefix: 'x', port: 7380 });
 * console.log('open', server.url);
 */
export async function serveInspector(client: RedisClientLike, options: ServeOptions = {}): Promise<InspectorServer> {
  const inspector = new Inspector(client, options);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 7380;
  const allowActions = options.allowActions ?? false;
  const intervalMs = options.intervalMs ?? 1000;
  const log = options.log ?? ((line: string) => console.error(line));
  const dir = assetDir();

  let latest: Promise<Snapshot> | null = null;
  let refreshing = false;
  const refresh = () => {
    if (refreshing) return;
    refreshing = true;
    const next = inspector.snapshot();
    next.then(
      () => {
        latest = next;
        refreshing = false;
      },
      () => {
        refreshing = false;
      },
    );
    latest ??= next;
  };
  refresh();
  const timer = setInterval(refresh, intervalMs);

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => send(res, statusOf(error), { error: messageOf(error), code: codeOf(error) }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req.headers.host, host, actualPort())) return send(res, 421, { error: 'unexpected Host header' });
    const url = new URL(req.url ?? '/', 'http://inspector');
    const asset = ASSETS[url.pathname];
    if (req.method === 'GET' && asset) {
      const body = readFileSync(join(dir, asset));
      res.writeHead(200, { ...HEADERS, 'content-type': TYPES[asset.split('.').pop()!]! });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/resources') {
      const snapshot = await (latest ?? inspector.snapshot());
      return send(res, 200, { ...snapshot, actions: allowActions });
    }
    const one = /^\/api\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (req.method === 'GET' && one && one[1] !== 'actions') {
      const pkg = assertPackage(decodeURIComponent(one[1]!));
      const name = decodeURIComponent(one[2]!);
      const space = url.searchParams.get('space') ?? undefined;
      const state = await inspector.describe(pkg, name, space ? { space } : {});
      if (!state) return send(res, 404, { error: `no ${pkg} named ${JSON.stringify(name)}` });
      return send(res, 200, state);
    }
    if (url.pathname === '/api/actions') {
      if (req.method !== 'POST') return send(res, 405, { error: 'POST an action' });
      if (!allowActions) return send(res, 403, { error: 'actions are off: start x-inspect with --allow-actions' });
      // A cross-site form cannot send JSON without a preflight, and a page of another origin says so.
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, { error: 'send application/json' });
      const origin = req.headers.origin;
      if (origin !== undefined && new URL(origin).host !== req.headers.host) return send(res, 403, { error: 'cross-origin action refused' });
      const action = JSON.parse(await readBody(req)) as Action;
      try {
        const result = await inspector.act(action);
        log(`x-inspect action ${JSON.stringify(action)} -> ok${result === null ? '' : ` (${result})`}`);
        refresh();
        return send(res, 200, { ok: true, result });
      } catch (error) {
        log(`x-inspect action ${JSON.stringify(action)} -> ${codeOf(error) ?? 'error'}: ${messageOf(error)}`);
        throw error;
      }
    }
    send(res, 404, { error: 'not found' });
  }

  const actualPort = () => (server.address() as AddressInfo | null)?.port ?? port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actualPort()}/`,
    inspector,
    async close() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await latest?.catch(() => undefined);
    },
  };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** A page bound to loopback answers only to loopback names (no DNS rebinding). */
function hostAllowed(header: string | undefined, bound: string, port: number): boolean {
  if (!LOOPBACK.has(bound)) return true;
  if (!header) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header);
  return m !== null && LOOPBACK.has(m[1]!) && (m[2] === undefined || Number(m[2]) === port);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { ...HEADERS, 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 64_000) throw new InvalidArgumentError('request body too large');
  }
  return body;
}

function statusOf(error: unknown): number {
  if (error instanceof SyntaxError || (XRedisError.isInstance(error) && error.code === 'INVALID_ARGUMENT')) return 400;
  if (XRedisError.isInstance(error)) return 409;
  return 500;
}

function codeOf(error: unknown): string | undefined {
  return XRedisError.isInstance(error) ? (error as XRedisError).code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
