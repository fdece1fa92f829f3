// The same table of cases against every framework's adapter, over real HTTP (fetch) and real Redis.
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { IdempotencyStore } from '../src';
import { FRAMEWORKS, type App, type CommonOptions } from './frameworks';
import { adminClient, gate } from './helpers';

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

describe.each(TARGETS)('HTTP adapters on %s', (target) => {
  let client: TestClient;
  let admin: TestClient;
  const apps: App[] = [];
  beforeAll(async () => {
    client = await connect(target);
    admin = await adminClient(target);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
    await admin.close();
  });

  describe.each(FRAMEWORKS.map((f) => [f.name, f] as const))('%s', (_name, framework) => {
    async function start(options: CommonOptions = {}) {
      const prefix = uniquePrefix();
      const store = new IdempotencyStore(client, { prefix });
      const app = await framework.start(store, options);
      apps.push(app);
      return { ...app, prefix, store };
    }

    it('replays the same key and body with Idempotent-Replayed: true, running the handler once, and gives the handler its claim', async () => {
      const { url, control } = await start();
      const first = await post(url, '{"amount":100,"currency":"EUR"}', { 'Idempotency-Key': 'same' });
      expect(first.status).toBe(201);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      const body = await first.json();
      expect(body).toEqual({ n: 1, body: { amount: 100, currency: 'EUR' }, key: 'http::same', aborted: false });
      const retry = await post(url, '{"currency":"EUR", "amount":100}', { 'Idempotency-Key': 'same' });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.headers.get('location')).toBe('/orders/1');
      expect(retry.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await retry.json()).toEqual(body);
      expect(control.calls).toBe(1);
    });

    it('answers 422 problem+json to the same key with another body', async () => {
      const { url, control } = await start();
      expect((await post(url, '{"amount":100}', { 'Idempotency-Key': 'k' })).status).toBe(201);
      const other = await post(url, '{"amount":999}', { 'Idempotency-Key': 'k' });
      expect(other.status).toBe(422);
      expect(other.headers.get('content-type')).toBe('application/problem+json');
      expect(await other.json()).toMatchObject({ type: 'about:blank', status: 422 });
      expect(control.calls).toBe(1);
    });

    it('runs concurrent duplicates once: the others get 409 with Retry-After, then the replay', async () => {
      const { url, control } = await start();
      const release = gate();
      const entered = gate();
      control.hold = release.promise;
      control.entered = () => entered.open();
      const first = post(url, '{"amount":1}', { 'Idempotency-Key': 'busy' });
      await entered.promise;
      const during = await Promise.all([1, 2, 3].map(() => post(url, '{"amount":1}', { 'Idempotency-Key': 'busy' })));
      for (const response of during) {
        expect(response.status).toBe(409);
        expect(response.headers.get('retry-after')).toBe('1');
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        expect(await response.json()).toMatchObject({ status: 409 });
      }
      release.open();
      expect((await first).status).toBe(201);
      const after = await post(url, '{"amount":1}', { 'Idempotency-Key': 'busy' });
      expect(after.headers.get('idempotent-replayed')).toBe('true');
      expect(control.calls).toBe(1);
    });

    it('answers 413 to a body over maxRequestBytes without running the handler or claiming the key', async () => {
      const { url, control, store } = await start({ maxRequestBytes: 32 });
      const big = await post(url, JSON.stringify({ pad: 'x'.repeat(200) }), { 'Idempotency-Key': 'big' });
      expect(big.status).toBe(413);
      expect(big.headers.get('content-type')).toBe('application/problem+json');
      expect(await big.json()).toMatchObject({ status: 413 });
      expect(control.calls).toBe(0);
      expect(await store.inspect('http::big')).toEqual({ status: 'absent' });
    });

    it('answers 400 problem+json without a key when required, and lets it through when not', async () => {
      const required = await start({ required: true });
      const missing = await post(required.url, '{}');
      expect(missing.status).toBe(400);
      expect(missing.headers.get('content-type')).toBe('application/problem+json');
      expect(await missing.json()).toMatchObject({ status: 400, title: 'Idempotency-Key is missing' });
      expect((await post(required.url, '{}', { 'Idempotency-Key': 'x'.repeat(256) })).status).toBe(400);
      expect(required.control.calls).toBe(0);
      const optional = await start();
      expect((await post(optional.url, '{}')).status).toBe(201);
      expect((await post(optional.url, '{}')).status).toBe(201);
      expect(optional.control.calls).toBe(2);
    });

    it('frees the key when the handler throws, so a retry runs it again and is then replayed', async () => {
      const { url, control } = await start();
      control.throwOn = [1];
      expect((await post(url, '{"a":1}', { 'Idempotency-Key': 'crash' })).status).toBe(500);
      const retry = await post(url, '{"a":1}', { 'Idempotency-Key': 'crash' });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect((await post(url, '{"a":1}', { 'Idempotency-Key': 'crash' })).headers.get('idempotent-replayed')).toBe('true');
      expect(control.calls).toBe(2);
    });

    it('never stores or replays Authorization, Set-Cookie or headers off the allowlist', async () => {
      const { url, control, prefix } = await start();
      const headers = { 'Idempotency-Key': 'private', Authorization: 'Bearer auth-secret-123' };
      const first = await post(url, '{"a":7}', headers);
      expect(first.headers.get('set-cookie')).toContain('cookie-secret-456');
      // Another client (no credentials) replaying the key gets neither the cookie nor the header.
      const other = await post(url, '{"a":7}', { 'Idempotency-Key': 'private' });
      expect(other.headers.get('idempotent-replayed')).toBe('true');
      expect(other.headers.get('set-cookie')).toBeNull();
      expect(other.headers.get('x-internal')).toBeNull();
      expect(control.calls).toBe(1);
      const record = await admin.hGetAll(keyspace(prefix, 'idempotency', 'http::private').key('record'));
      expect(record.state).toBe('completed');
      for (const secret of ['auth-secret-123', 'cookie-secret-456', 'internal-secret-789', 'set-cookie', 'authorization', 'x-internal']) {
        expect(record.value).not.toContain(secret);
      }
    });

    it('even when storeHeaders lists Set-Cookie and Authorization', async () => {
      const { url, prefix } = await start({ storeHeaders: ['content-type', 'set-cookie', 'authorization'] });
      await post(url, '{}', { 'Idempotency-Key': 'listed' });
      const replay = await post(url, '{}', { 'Idempotency-Key': 'listed' });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.headers.get('set-cookie')).toBeNull();
      const record = await admin.hGetAll(keyspace(prefix, 'idempotency', 'http::listed').key('record'));
      expect(record.value).not.toContain('cookie-secret-456');
    });
  });
});
