import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { AutoResetEvent, CountDownLatch, InvalidArgumentError, ManualResetEvent, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('events on %s', (_, open) => {
  it('wakes waiters of an auto-reset event, a manual-reset event and a latch', async () => {
    const client = await open();
    try {
      const auto = new AutoResetEvent(client, 'clients', { prefix: uniquePrefix() });
      const one = auto.wait({ timeoutMs: 30_000 });
      await auto.set();
      await one;
      const manual = new ManualResetEvent(client, 'clients', { prefix: uniquePrefix() });
      const both = Promise.all([manual.wait({ timeoutMs: 30_000 }), manual.wait({ timeoutMs: 30_000 })]);
      await manual.set();
      await both;
      const latch = new CountDownLatch(client, 'clients', { count: 2, prefix: uniquePrefix() });
      const all = latch.wait({ timeoutMs: 30_000 });
      await latch.countDown();
      await latch.countDown();
      await all;
      expect(await manual.isSet()).toBe(true);
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('new AutoResetEvent', () => {
  it('rejects an object that is not a Redis client', () => {
    expect(() => new AutoResetEvent({} as never, 'x')).toThrow(InvalidArgumentError);
    expect(() => new ManualResetEvent({} as never, 'x')).toThrow(InvalidArgumentError);
    expect(() => new CountDownLatch({} as never, 'x', { count: 1 })).toThrow(InvalidArgumentError);
  });
});
