import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { InvalidArgumentError, Quota, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('Quota on %s', (_, open) => {
  it('tops up, consumes exactly and refuses what is not there', async () => {
    const client = await open();
    try {
      const quota = new Quota(client, { prefix: uniquePrefix() });
      await quota.topUp('wallet', 10, { idempotencyKey: 'deposit' });
      const r = await quota.tryConsume('wallet', 4, { idempotencyKey: 'req-1' });
      expect([r.applied, r.remaining]).toEqual([true, 6]);
      const again = await quota.tryConsume('wallet', 4, { idempotencyKey: 'req-1' });
      expect(again.remaining).toBe(6);
      expect((await quota.tryConsume('wallet', 7)).applied).toBe(false);
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('new Quota', () => {
  it('rejects an object that is not a Redis client', () => {
    expect(() => new Quota({} as never)).toThrow(InvalidArgumentError);
  });
});
