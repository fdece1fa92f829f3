import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { IdempotencyStore, InvalidArgumentError, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('IdempotencyStore on %s', (_, open) => {
  it('runs the operation once and replays its result to a caller that waited', async () => {
    const client = await open();
    try {
      const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
      let runs = 0;
      let finish: (value: string) => void = () => undefined;
      const operation = () => {
        runs += 1;
        return new Promise<string>((resolve) => (finish = resolve));
      };
      const first = store.run('order-1', operation);
      while (runs === 0) await new Promise((r) => setTimeout(r, 10));
      const second = store.run('order-1', operation, { waitMs: 30_000 });
      await new Promise((r) => setTimeout(r, 100));
      finish('done');
      expect(await Promise.all([first, second])).toEqual(['done', 'done']);
      expect(runs).toBe(1);
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('new IdempotencyStore', () => {
  it('rejects an object that is not a Redis client', () => {
    expect(() => new IdempotencyStore({} as never)).toThrow(InvalidArgumentError);
  });
});
