import { startFaultyRedis, uniquePrefix, type FaultyRedis } from '@x/testing';
import {
  ClientClosedError,
  ConnectionTimeoutError,
  DisconnectsClientError,
  ErrorReply,
  SocketClosedUnexpectedlyError,
  TimeoutError,
  createClient,
} from 'redis';
import {
  Grant,
  InvalidArgumentError,
  XRedisError,
  LUA_HELPERS,
  LeaseKeeper,
  RedisUnavailableError,
  WakeBus,
  defineScript,
  isTransient,
  keyspace,
  waitFor,
  type RedisClientLike,
} from '../src';

describe('isTransient', () => {
  it.each([
    ['a socket closed mid-command', new SocketClosedUnexpectedlyError()],
    ['a connection timeout', new ConnectionTimeoutError()],
    ['a command timeout', new TimeoutError()],
    ['a refused connection', new ErrorReply('ERR max number of clients reached')],
    ['LOADING', new ErrorReply('LOADING Redis is loading the dataset in memory')],
    ['BUSY', new ErrorReply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.')],
    ['TRYAGAIN', new ErrorReply('TRYAGAIN Multiple keys request during rehashing of slot')],
    ['CLUSTERDOWN', new ErrorReply('CLUSTERDOWN The cluster is down')],
    ['MASTERDOWN', new ErrorReply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.')],
    ['READONLY', new ErrorReply("READONLY You can't write against a read only replica.")],
    ['NOREPLICAS', new ErrorReply('NOREPLICAS Not enough good replicas to write.')],
    ['MOVED', new ErrorReply('MOVED 3999 127.0.0.1:6381')],
    ['ASK', new ErrorReply('ASK 3999 127.0.0.1:6381')],
    ['a reset socket', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a refused socket', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['a RedisUnavailableError', new RedisUnavailableError('x', new SocketClosedUnexpectedlyError())],
  ])('takes %s for transient', (_, error) => {
    expect(isTransient(error)).toBe(true);
  });

  it.each([
    ['bad input', new InvalidArgumentError('name must be a non-empty string')],
    ['NOSCRIPT', new ErrorReply('NOSCRIPT No matching script. Please use EVAL.')],
    ['WRONGTYPE', new ErrorReply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['OOM', new ErrorReply("OOM command not allowed when used memory > 'maxmemory'.")],
    ['NOPERM', new ErrorReply('NOPERM User has no permissions to run the evalsha command')],
    ['BUSYGROUP', new ErrorReply('BUSYGROUP Consumer Group name already exists')],
    ['a script error', new ErrorReply('ERR user_script:1: Script attempted to access nonexistent global variable')],
    ["the caller's own AbortSignal.timeout", new DOMException('The operation was aborted due to timeout', 'TimeoutError')],
    ['a string', 'ECONNRESET'],
  ])('takes %s for a real failure', (_, error) => {
    expect(isTransient(error)).toBe(false);
  });

  it('takes "client closed" for transient while the client is open (reconnecting), not once it was closed', () => {
    expect(isTransient(new ClientClosedError(), { isOpen: true })).toBe(true);
    expect(isTransient(new DisconnectsClientError(), { isOpen: true })).toBe(true);
    expect(isTransient(new ClientClosedError(), { isOpen: false })).toBe(false);
    expect(isTransient(new DisconnectsClientError(), { isOpen: false })).toBe(false);
    expect(isTransient(new ClientClosedError())).toBe(false);
  });
});

describe('waitFor through transient faults', () => {
  // An in-process channel nobody publishes on: these waits only re-check.
  const client = { evalSha: async () => 0, eval: async () => 0, duplicate: () => ({}) } as unknown as RedisClientLike;
  const spec = (attempt: () => Promise<{ done: string } | { retryInMs: number }>, timeoutMs = 10_000) => ({
    client,
    channel: 'c',
    target: 't',
    timeoutMs,
    timeoutError: () => new Error('timed out'),
    attempt,
  });
  // Subscribing is not what these tests are about: the bus of this fake client says it is subscribed.
  beforeAll(() => {
    const bus = WakeBus.for(client);
    jest.spyOn(bus, 'isSubscribed').mockReturnValue(true);
    jest.spyOn(bus, 'listen').mockResolvedValue(async () => undefined);
  });

  it('retries attempts that meet transient faults and returns the result', async () => {
    let attempts = 0;
    const faults = [new SocketClosedUnexpectedlyError(), new ErrorReply('ERR max number of clients reached'), new ErrorReply('LOADING x')];
    const value = await waitFor<string>(
      spec(async () => {
        attempts += 1;
        const fault = faults.shift();
        if (fault) throw new RedisUnavailableError('test', fault);
        return { done: 'ok' };
      }),
    );
    expect(value).toBe('ok');
    expect(attempts).toBe(4);
  });

  it("rejects with the caller's own timeout error, the last fault as its cause", async () => {
    const fault = new SocketClosedUnexpectedlyError();
    const error = await waitFor<string>(
      spec(async () => {
        throw new RedisUnavailableError('test', fault);
      }, 300),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('timed out');
    expect((error as Error).cause).toBe(fault);
  });

  it('rejects at once on an error that is not a fault', async () => {
    let attempts = 0;
    const error = await waitFor<string>(
      spec(async () => {
        attempts += 1;
        throw new InvalidArgumentError('bad');
      }),
    ).catch((e: unknown) => e);
    expect(InvalidArgumentError.isInstance(error)).toBe(true);
    expect(attempts).toBe(1);
  });
});

describe('Grant.release through transient faults', () => {
  const notHeld = (detail: string) => new XRedisError('NOT_HELD', `not held: ${detail}`);
  function grantWith(release: () => Promise<void>, deadlineInMs: number) {
    const grant = new Grant({
      token: 't',
      fence: 1,
      permits: 1,
      ttlMs: 30_000,
      expiresAt: Date.now() + 30_000,
      backend: { extend: async () => Date.now() + 30_000, release, notHeld },
    });
    const deadline = performance.now() + deadlineInMs;
    grant.attach({ stop: () => undefined, extended: () => undefined, lost: false, deadline });
    return grant;
  }

  it('retries a release that meets a fault; once it got through, release() sends nothing more', async () => {
    let calls = 0;
    const grant = grantWith(async () => {
      calls += 1;
      if (calls < 3) throw new RedisUnavailableError('release', new SocketClosedUnexpectedlyError());
    }, 30_000);
    await grant.release();
    await grant.release();
    expect(calls).toBe(3);
  });

  it('throws the fault when the server stays away, and a later release() tries again', async () => {
    let down = true;
    let calls = 0;
    // The lease's deadline bounds the retries.
    const grant = grantWith(async () => {
      calls += 1;
      if (down) throw new RedisUnavailableError('release', new SocketClosedUnexpectedlyError());
    }, 300);
    const error = await grant.release().catch((e: unknown) => e);
    expect(RedisUnavailableError.isInstance(error)).toBe(true);
    const failedCalls = calls;
    down = false;
    await grant.release();
    expect(calls).toBe(failedCalls + 1);
    expect(grant.signal.aborted).toBe(false);
  });

  it('takes "not held" on a resend before the deadline for its own release whose reply was lost', async () => {
    let calls = 0;
    const grant = grantWith(async () => {
      calls += 1;
      if (calls === 1) throw new RedisUnavailableError('release', new SocketClosedUnexpectedlyError());
      throw notHeld('the lease expired or was never held');
    }, 30_000);
    await grant.release();
    expect(grant.signal.aborted).toBe(false);
  });

  it('still reports a lease lost when the first send was refused', async () => {
    const grant = grantWith(async () => {
      throw notHeld('the lease expired or was never held');
    }, 30_000);
    await expect(grant.release()).rejects.toThrow('not held');
    expect(grant.signal.aborted).toBe(true);
  });
});

// A gate: `open` sets a key and broadcasts a wake-up; `check` reads it.
const open = defineScript({
  name: 'test.open',
  keys: ['gate'],
  source: LUA_HELPERS + `redis.call('SET', KEYS[1], '1') wake(ARGV[1], '* 1') return 1`,
});
const check = defineScript({ name: 'test.check', keys: ['gate'], source: `return redis.call('EXISTS', KEYS[1])` });
const renew = defineScript({
  name: 'test.renew',
  keys: ['lease'],
  source: LUA_HELPERS + `
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return now_ms() + tonumber(ARGV[2])`,
});

describe('against a server that drops and refuses connections', () => {
  let redis: FaultyRedis;
  let client: ReturnType<typeof createClient>;
  const name = 'faulty';
  beforeAll(async () => {
    redis = await startFaultyRedis();
  });
  beforeEach(async () => {
    client = createClient({ url: redis.url, name, socket: { reconnectStrategy: () => 50 } });
    client.on('error', () => undefined);
    await client.connect();
  });
  afterEach(async () => {
    await WakeBus.close(client);
    if (client.isOpen) client.destroy();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('fails a single script call fast with RedisUnavailableError, the fault as its cause', async () => {
    const gate = keyspace(uniquePrefix(), 'gate', 'g').key('gate');
    const outage = await redis.outage(60_000, { name });
    try {
      const error = await check.run(client, [gate]).catch((e: unknown) => e);
      expect(RedisUnavailableError.isInstance(error)).toBe(true);
      expect(isTransient((error as Error).cause, client)).toBe(true);
    } finally {
      await outage.end();
    }
  });

  it('a waiter whose connections are cut while new ones are refused gets its result once the server is back', async () => {
    const ks = keyspace(uniquePrefix(), 'gate', 'g');
    const gate = ks.key('gate');
    let faults = 0;
    const waiting = waitFor<boolean>({
      client,
      channel: ks.channel,
      target: 'me',
      timeoutMs: 20_000,
      timeoutError: () => new Error('timed out'),
      attempt: async () => {
        try {
          return Number(await check.run(client, [gate])) === 1 ? { done: true } : { retryInMs: 100 };
        } catch (error) {
          faults += 1;
          throw error;
        }
      },
    });
    await new Promise((r) => setTimeout(r, 200));
    const outage = await redis.outage(1_000, { name });
    await outage.ended;
    const other = await createClient({ url: redis.url }).on('error', () => undefined).connect();
    await open.run(other, [gate], [ks.channel]);
    await other.close();
    await expect(waiting).resolves.toBe(true);
    expect(faults).toBeGreaterThan(0);
  });

  it('keeps renewing a lease through dropped connections', async () => {
    const key = keyspace(uniquePrefix(), 'lease', 'l').key('lease');
    const ttlMs = 1_500;
    const sentAt = performance.now();
    await client.set(key, 'me', { PX: ttlMs } as never);
    const events: string[] = [];
    const kept = LeaseKeeper.for(client).keep({
      ttlMs,
      sentAt,
      renew: async () => {
        const at = Number(await renew.run(client, [key], ['me', ttlMs]));
        return at < 0 ? null : at;
      },
      onRenewed: () => void events.push('renewed'),
      onLost: (why) => void events.push(`lost:${why}`),
    });
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 400));
      await redis.dropConnections({ name });
    }
    await new Promise((r) => setTimeout(r, 400));
    kept.stop();
    expect(events).not.toContain('lost:expired');
    expect(events).not.toContain('lost:refused');
    expect(events.filter((e) => e === 'renewed').length).toBeGreaterThan(2);
    expect(await client.get(key)).toBe('me');
  });
});
