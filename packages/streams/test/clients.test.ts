import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { InvalidArgumentError } from '@x/redis-core';
import { StreamConsumer, StreamProducer, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('streams on %s', (_, open) => {
  it('a consumer started before the producer publishes processes the message once', async () => {
    const client = await open();
    try {
      const prefix = uniquePrefix();
      const seen: string[] = [];
      const consumer = new StreamConsumer(client, {
        prefix,
        stream: 'sales',
        group: 'tracker',
        initialState: { total: 0 },
        handler: async (message, tx) => {
          seen.push(String(message.fields.quantity));
          tx.state.total += Number(message.fields.quantity);
        },
      });
      await consumer.start();
      const producer = new StreamProducer(client, { prefix });
      await producer.publish('sales', { quantity: '3' });
      await producer.publish('sales', { quantity: '4' });
      const until = Date.now() + 30_000;
      while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await consumer.stop();
      expect(seen).toEqual(['3', '4']);
      expect(consumer.state).toEqual({ total: 7 });
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('new StreamConsumer', () => {
  it('rejects an object that is not a Redis client', () => {
    expect(() => new StreamProducer({} as never)).toThrow(InvalidArgumentError);
  });
});
