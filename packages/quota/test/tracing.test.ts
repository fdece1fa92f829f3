import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, recordChannels, uniquePrefix, type TestClient } from '@x/testing';
import { Quota } from '../src';

const OPERATIONS = [
  'tryConsume', 'topUp', 'setAvailable', 'reserve', 'commit', 'cancel', 'allocateChunk', 'consumeChunk', 'renewChunk', 'releaseChunk',
].map((op) => `x:quota:${op}`);

describe.each(TARGETS)('quota tracing channels on %s', (target) => {
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

  it('publishes each operation with its resource, script, outcome and what is left', async () => {
    const quota = new Quota(client, { prefix });
    const rec = recordChannels({ operations: OPERATIONS });
    try {
      await quota.topUp('wallet:1', 10);
      await quota.tryConsume('wallet:1', 4);
      await quota.tryConsume('wallet:1', 40);
      const hold = await quota.reserve('wallet:1', 5);
      await expect(quota.reserve('wallet:1', 50)).rejects.toMatchObject({ code: 'INSUFFICIENT_QUOTA' });
      await quota.commit('wallet:1', hold.reservationId, { amount: 3 });
      const other = await quota.reserve('wallet:1', 1);
      await quota.cancel('wallet:1', other.reservationId);

      expect(rec.ended.map(({ channel, context: c }) => [channel, c.resource, c.script, c.outcome, c.remaining])).toEqual([
        ['x:quota:topUp', 'wallet:1', 'quota.topUp', 'ok', undefined],
        ['x:quota:tryConsume', 'wallet:1', 'quota.tryConsume', 'ok', 6],
        ['x:quota:tryConsume', 'wallet:1', 'quota.tryConsume', 'refused', 6],
        ['x:quota:reserve', 'wallet:1', 'quota.reserve', 'ok', undefined],
        ['x:quota:reserve', 'wallet:1', 'quota.reserve', 'refused', undefined],
        ['x:quota:commit', 'wallet:1', 'quota.commit', 'ok', 3],
        ['x:quota:reserve', 'wallet:1', 'quota.reserve', 'ok', undefined],
        ['x:quota:cancel', 'wallet:1', 'quota.cancel', 'ok', undefined],
      ]);
      expect(rec.ended[4]!.context.error).toMatchObject({ code: 'INSUFFICIENT_QUOTA' });
    } finally {
      rec.stop();
    }
  });
});
