import { TARGETS, connect, onEveryNode, uniquePrefix, type TestClient } from '@x/testing';
import { LUA_HELPERS, LeaseKeeper, defineScript, keyspace } from '../src';

// A minimal lease: the key holds the token and expires on the server.
const renewScript = defineScript({
  name: 'test.renew',
  keys: ['lease'],
  source: LUA_HELPERS + `
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return now_ms() + tonumber(ARGV[2])`,
});

describe.each(TARGETS)('LeaseKeeper on %s', (target) => {
  let client: TestClient;
  let other: TestClient;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeAll(async () => {
    client = await connect(target);
    other = await connect(target);
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await client.close();
    await other.close();
  });

  async function hold(ttlMs: number, events: string[]) {
    const key = keyspace(uniquePrefix(), 'lease', 'l').key('lease');
    const sentAt = performance.now();
    await client.set(key, 'me', { PX: ttlMs } as never);
    const kept = LeaseKeeper.for(client).keep({
      ttlMs,
      sentAt,
      renew: async () => {
        const at = (await renewScript.run(client, [key], ['me', ttlMs])) as number;
        return at < 0 ? null : at;
      },
      onRenewed: () => void events.push('renewed'),
      onLost: (why) => void events.push(`lost:${why}`),
    });
    return { key, kept };
  }

  it('keeps a lease alive well past its TTL', async () => {
    const events: string[] = [];
    const { key, kept } = await hold(300, events);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await client.get(key)).toBe('me');
    expect(events.filter((e) => e === 'renewed').length).toBeGreaterThanOrEqual(3);
    expect(events.some((e) => e.startsWith('lost'))).toBe(false);
    kept.stop();
  });

  it('reports a lease whose renewal is refused as lost', async () => {
    const events: string[] = [];
    const { key } = await hold(300, events);
    await client.set(key, 'someone-else');
    const until = Date.now() + 5_000;
    while (!events.includes('lost:refused') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(events).toContain('lost:refused');
  });

  it('reports the lease lost before anyone else can take it when the server is paused past the TTL', async () => {
    const events: string[] = [];
    const ttlMs = 400;
    const { key, kept } = await hold(ttlMs, events);
    let lostBeforeTakeover: boolean | undefined;
    await onEveryNode(target, ['CLIENT', 'PAUSE', String(ttlMs * 3), 'ALL']);
    // Once the pause ends the lease has run out on the server and another owner can take it.
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const took = await other.set(key, 'other', { NX: true, PX: 10_000 } as never).catch(() => null);
      if (took === 'OK') {
        lostBeforeTakeover = kept.lost;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(lostBeforeTakeover).toBe(true);
    expect(events).toContain('lost:expired');
    expect(unhandled).toEqual([]);
  });
});
