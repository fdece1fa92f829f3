import { TARGETS, connect, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { AutoResetEvent, CountDownLatch, InvalidArgumentError, ManualResetEvent, describe as describeEvent } from '../src';

describe.each(TARGETS)('describe (event) on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });

  it('reports each kind of event under a name, and lists the names', async () => {
    const auto = new AutoResetEvent(client, 'jobs', { prefix });
    await auto.set();
    await auto.set();
    await new ManualResetEvent(client, 'warm', { prefix }).set();
    const latch = new CountDownLatch(client, 'boot', { prefix, count: 3 });
    await latch.countDown();

    expect(await describeEvent(client, 'jobs', { prefix })).toMatchObject({ kind: 'event', autoReset: { signals: 2, waiters: [] }, manualReset: null, latch: null });
    expect(await describeEvent(client, 'warm', { prefix })).toMatchObject({ autoReset: null, manualReset: { set: true }, latch: null });
    expect(await describeEvent(client, 'boot', { prefix })).toMatchObject({ autoReset: null, manualReset: null, latch: { count: 2 } });
    expect(await describeEvent.list(client, { prefix })).toEqual([{ name: 'boot' }, { name: 'jobs' }, { name: 'warm' }]);
  });

  it('shows the waiters of an auto-reset event in order', async () => {
    const auto = new AutoResetEvent(client, 'q', { prefix });
    const waiting = auto.wait({ timeoutMs: 20_000 });
    await until(async () => (await describeEvent(client, 'q', { prefix }))?.autoReset?.waiters.length === 1);
    expect((await describeEvent(client, 'q', { prefix }))!.autoReset!.waiters[0]!.alive).toBe(true);
    await auto.set();
    await waiting;
  });

  it('returns null for a name no event uses, and rejects a bad prefix', async () => {
    expect(await describeEvent(client, 'none', { prefix })).toBeNull();
    await expect(describeEvent(client, 'a', { prefix: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
