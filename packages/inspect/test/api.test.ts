import { request } from 'node:http';
import { TARGETS, connect, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { Lock } from '@x/lock';
import { serveInspector, type InspectorServer } from '../src';
import { main } from '../src/cli';
import { HOSTILE, busyRedis } from './fixtures';

async function get(server: InspectorServer, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, server.url), { headers });
  return { status: res.status, type: res.headers.get('content-type'), csp: res.headers.get('content-security-policy'), body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() };
}

async function post(server: InspectorServer, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await fetch(new URL('/api/actions', server.url), { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

describe.each(TARGETS)('x-inspect JSON API on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  let busy: Awaited<ReturnType<typeof busyRedis>>;
  let server: InspectorServer;
  let actions: InspectorServer;
  const logged: string[] = [];
  beforeAll(async () => {
    client = await connect(target);
    prefix = uniquePrefix();
    busy = await busyRedis(client, prefix);
    server = await serveInspector(client, { prefix, port: 0, intervalMs: 100 });
    actions = await serveInspector(client, { prefix, port: 0, intervalMs: 100, allowActions: true, log: (l) => logged.push(l) });
  });
  afterAll(async () => {
    await server.close();
    await actions.close();
    await busy.release();
    await WakeBus.close(client);
    await client.close();
  });

  it('lists every resource under the prefix with its state, and the server time', async () => {
    await until(async () => (await get(server, '/api/semaphore/gpu')).body.waiters?.length === 1);
    await until(async () => (await get(server, '/api/resources')).body.packages.semaphore[0]?.state.waiters.length === 1);
    const { status, body } = await get(server, '/api/resources');
    expect(status).toBe(200);
    expect(body.prefix).toBe(prefix);
    expect(body.actions).toBe(false);
    expect(body.errors).toEqual({});
    expect(typeof body.now).toBe('number');
    expect(body.packages.lock.map((l: any) => l.ref.name).sort()).toEqual([HOSTILE, 'orders'].sort());
    const orders = body.packages.lock.find((l: any) => l.ref.name === 'orders').state;
    expect(orders).toMatchObject({ locked: true, holder: { token: busy.lock.token, fence: busy.lock.fence } });
    expect(body.packages.semaphore[0].state).toMatchObject({ name: 'gpu', used: 1, limit: 1, free: 0 });
    expect(body.packages.leasedkeyq[0].state).toMatchObject({ name: 'jobs', ready: 2, inFlight: 1 });
    expect(body.packages.streams[0]).toMatchObject({ ref: { name: 'pay', space: 'default' }, state: { length: 1, deadLetters: 1 } });
    expect(body.packages.quota[0].state).toMatchObject({ name: 'wallet:1', available: 100 });
    expect(body.packages.event).toEqual([]);
  });

  it('keeps a short history per resource for the charts', async () => {
    await until(async () => {
      const { body } = await get(server, '/api/resources');
      return (body.history[JSON.stringify(['leasedkeyq', '', 'jobs'])]?.ready?.length ?? 0) >= 3;
    });
    const { body } = await get(server, '/api/resources');
    const jobs = body.history[JSON.stringify(['leasedkeyq', '', 'jobs'])];
    expect(jobs.inFlight.at(-1)[1]).toBe(1);
    expect(body.history[JSON.stringify(['streams', 'default', 'pay'])].deadLetters.at(-1)[1]).toBe(1);
    expect(body.history[JSON.stringify(['quota', '', 'wallet:1'])].available.at(-1)[1]).toBe(100);
  });

  it('describes one resource, 404 for an unknown one, 400 for an unknown package', async () => {
    const one = await get(server, `/api/lock/${encodeURIComponent(HOSTILE)}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ kind: 'lock', name: HOSTILE, locked: true });
    expect((await get(server, '/api/streams/pay?space=default')).body).toMatchObject({ deadLetters: 1 });
    expect((await get(server, '/api/lock/nobody')).status).toBe(404);
    expect((await get(server, '/api/nosuch/x')).status).toBe(400);
  });

  it('serves the page with a strict content security policy, and only to loopback host names', async () => {
    const page = await get(server, '/');
    expect(page.status).toBe(200);
    expect(page.type).toContain('text/html');
    expect(page.body).toContain('<script src="app.js"');
    expect(page.csp).toContain("script-src 'self'");
    expect((await get(server, '/app.js')).type).toContain('text/javascript');
    // A DNS-rebound name pointing at 127.0.0.1 (fetch cannot set Host).
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(new URL('/api/resources', server.url), { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });

  it('refuses actions unless allowed, and checks what it is sent', async () => {
    expect((await post(server, { action: 'release', package: 'lock', name: 'orders', token: busy.lock.token })).status).toBe(403);
    expect((await post(actions, { action: 'release', package: 'lock', name: 'orders', token: busy.lock.token }, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(actions, { action: 'release', package: 'lock', name: 'orders', token: busy.lock.token }, { 'content-type': 'application/json', origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(actions, { action: 'explode', package: 'lock', name: 'orders' })).status).toBe(400);
    expect((await get(actions, '/api/lock/orders')).body.locked).toBe(true);
  });

  it('releases a lock by its token, re-drives dead letters, and logs each action', async () => {
    const held = await new Lock(client, 'to-release', { prefix }).acquire();
    const r = await post(actions, { action: 'release', package: 'lock', name: 'to-release', token: held.token });
    expect(r).toEqual({ status: 200, body: { ok: true, result: null } });
    expect((await get(actions, '/api/lock/to-release')).body.locked).toBe(false);
    const again = await post(actions, { action: 'release', package: 'lock', name: 'to-release', token: held.token });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('NOT_HELD');

    const moved = await post(actions, { action: 'redrive', package: 'streams', name: 'pay', space: 'default' });
    expect(moved).toEqual({ status: 200, body: { ok: true, result: 1 } });
    expect((await get(actions, '/api/streams/pay')).body).toMatchObject({ length: 2, deadLetters: 0 });
    // The refused 'explode' of the previous test, then these three.
    expect(logged).toHaveLength(4);
    expect(logged[0]).toContain('INVALID_ARGUMENT');
    expect(logged[1]).toContain('"action":"release"');
    expect(logged[2]).toContain('NOT_HELD');
    expect(logged[3]).toContain('"action":"redrive"');
  });
});

describe('x-inspect --json', () => {
  let client: TestClient;
  let prefix: string;
  let out: string[];
  let spy: jest.SpyInstance[];
  beforeAll(async () => {
    client = await connect('standalone');
  });
  beforeEach(() => {
    prefix = uniquePrefix();
    out = [];
    spy = [jest.spyOn(console, 'log').mockImplementation((s) => void out.push(String(s))), jest.spyOn(console, 'error').mockImplementation((s) => void out.push(String(s)))];
  });
  afterEach(() => spy.forEach((s) => s.mockRestore()));
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('prints one resource as JSON and exits 0; 1 when it holds nothing; 2 on bad usage', async () => {
    const held = await new Lock(client, 'orders', { prefix }).acquire();
    const url = process.env.REDIS_URL!;
    expect(await main(['--url', url, '--prefix', prefix, '--json', 'lock', 'orders'])).toBe(0);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ kind: 'lock', name: 'orders', locked: true, holder: { token: held.token } });
    out.length = 0;
    expect(await main(['--url', url, '--prefix', prefix, '--json', 'lock', 'nobody'])).toBe(1);
    expect(out).toEqual(['null']);
    expect(await main(['--url', url, '--json', 'lock'])).toBe(2);
    expect(await main(['--url', url, '--json', 'nosuch', 'x'])).toBe(2);
    expect(await main(['--prefix', prefix])).toBe(2);
    await held.release();
  });
});
