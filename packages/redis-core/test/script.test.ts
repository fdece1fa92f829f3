import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { LUA_HELPERS, XRedisError, defineScript, keyspace, normalizeReply } from '../src';

class NotHeldError extends XRedisError {
  constructor(detail: string) {
    super('NOT_HELD', detail);
  }
}

const echo = defineScript({
  name: 'test.echo',
  keys: ['a', 'b'],
  source: `redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[2])
           return { redis.call('GET', KEYS[1]), tonumber(ARGV[2]), { 'nested' } }`,
});

const failing = defineScript({
  name: 'test.failing',
  keys: ['a'],
  source: `if ARGV[1] == 'mapped' then return redis.error_reply('NOT_HELD lease is gone') end
           if ARGV[1] == 'unmapped' then return redis.error_reply('SOMETHING_ELSE with detail') end
           return redis.call('INCR', KEYS[1])`,
  errors: { NOT_HELD: (detail) => new NotHeldError(detail) },
});

const bigNumbers = defineScript({
  name: 'test.big',
  keys: ['a'],
  source: LUA_HELPERS + `return { int(9007199254740991), now_ms(), now_us() }`,
});

describe.each(TARGETS)('defineScript on %s', (target) => {
  let client: TestClient;
  let resp2: TestClient;
  let prefix: string;
  beforeAll(async () => {
    client = await connect(target);
    resp2 = await connect(target, { RESP: 2 });
  });
  afterAll(async () => {
    await client.close();
    await resp2.close();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });

  it('computes the SHA1 locally, as the server does', async () => {
    const ks = keyspace(prefix, 'test', 'sha');
    const sha = await client.scriptLoad(echo.source);
    expect(sha).toBe(echo.sha);
    await echo.run(client, [ks.key('a'), ks.key('b')], ['x', 1]);
  });

  it('falls back to EVAL when the script cache was flushed, and caches it again', async () => {
    const ks = keyspace(prefix, 'test', 'flush');
    for (const master of target === 'cluster' ? (client as any).masters : [null]) {
      if (master) await (client as any).nodeClient(master).then((c: TestClient) => c.scriptFlush());
      else await client.scriptFlush();
    }
    const keys = [ks.key('a'), ks.key('b')];
    expect(await echo.run(client, keys, ['v', 7])).toEqual(['v', 7, ['nested']]);
    // EVAL loaded it: the next run is served by EVALSHA from the cache.
    expect(await echo.run(client, keys, ['w', 8])).toEqual(['w', 8, ['nested']]);
  });

  it('returns the same plain values over RESP2 and RESP3', async () => {
    const ks = keyspace(prefix, 'test', 'resp');
    const keys = [ks.key('a'), ks.key('b')];
    const three = await echo.run(client, keys, ['same', 3]);
    const two = await echo.run(resp2, keys, ['same', 3]);
    expect(two).toEqual(three);
    expect(three).toEqual(['same', 3, ['nested']]);
  });

  it('maps a business error code to its typed error', async () => {
    const ks = keyspace(prefix, 'test', 'err');
    const error = await failing.run(client, [ks.key('a')], ['mapped']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotHeldError);
    expect((error as NotHeldError).code).toBe('NOT_HELD');
    expect((error as NotHeldError).message).toBe('lease is gone');
  });

  it('turns an unmapped business code into an XRedisError carrying that code', async () => {
    const ks = keyspace(prefix, 'test', 'err2');
    const error = await failing.run(resp2, [ks.key('a')], ['unmapped']).catch((e: unknown) => e);
    expect(XRedisError.isInstance(error)).toBe(true);
    expect((error as XRedisError).code).toBe('SOMETHING_ELSE');
    expect((error as XRedisError).message).toBe('with detail');
  });

  it('keeps Redis errors as they are', async () => {
    const ks = keyspace(prefix, 'test', 'wrongtype');
    await client.hSet(ks.key('a'), 'f', 'v');
    const error = await failing.run(client, [ks.key('a')], ['incr']).catch((e: unknown) => e);
    expect(XRedisError.isInstance(error)).toBe(false);
    expect(String((error as Error).message)).toMatch(/WRONGTYPE/);
  });

  it('keeps every digit of integers up to 2^53 - 1 and reads the server clock', async () => {
    const ks = keyspace(prefix, 'test', 'big');
    const [big, ms, us] = (await bigNumbers.run(client, [ks.key('a')])) as [string, number, number];
    expect(big).toBe('9007199254740991');
    expect(Math.abs(ms - Date.now())).toBeLessThan(60_000);
    expect(Math.floor(us / 1000)).toBeGreaterThanOrEqual(ms);
  });

  it('rejects a call with the wrong number of keys before sending it', async () => {
    await expect(echo.run(client, ['only-one'], [])).rejects.toThrow(TypeError);
  });
});

describe('normalizeReply', () => {
  it('turns Buffers into strings at any depth', () => {
    expect(normalizeReply([Buffer.from('a'), [Buffer.from('b'), 2], null])).toEqual(['a', ['b', 2], null]);
  });
});

describe('defineScript error mapping', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect('standalone');
  });
  afterAll(async () => {
    await client.close();
  });

  it('keeps a server error raised inside the script (not a business code) as it is', async () => {
    const xgroup = defineScript({
      name: 'test.nogroup',
      keys: ['s'],
      source: `return redis.call('XREADGROUP', 'GROUP', 'nope', 'c', 'COUNT', 1, 'STREAMS', KEYS[1], '>')`,
    });
    const ks = keyspace(uniquePrefix(), 'test', 'nogroup');
    await client.xAdd(ks.key('s'), '*', { a: '1' });
    const error = await xgroup.run(client, [ks.key('s')]).catch((e: unknown) => e);
    expect(XRedisError.isInstance(error)).toBe(false);
    expect(String((error as Error).message)).toMatch(/^NOGROUP/);
  });
});

describe('defineScript errors raised in nested Lua functions', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect('standalone');
  });
  afterAll(async () => {
    await client.close();
  });

  it('maps a declared code raised with error({err=...}) and drops the location from the detail', async () => {
    const nested = defineScript({
      name: 'test.nested',
      keys: ['a'],
      source: `local function check() error({ err = 'NOT_HELD deep inside' }) end check() return 1`,
      errors: { NOT_HELD: (detail) => new NotHeldError(detail) },
    });
    const error = await nested.run(client, [keyspace(uniquePrefix(), 'test', 'n').key('a')]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotHeldError);
    expect((error as NotHeldError).message).toBe('deep inside');
  });
});
