import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamCodecError, StreamConsumer, StreamProducer, type StreamConsumerOptions } from '../src';
import { entries, keysOf } from './helpers';

describe.each(TARGETS)('StreamProducer and option checks on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('publishes entries in order under the key naming consumers read, and returns their ids', async () => {
    const prefix = uniquePrefix();
    const producer = new StreamProducer(client, { prefix, space: 'shop' });
    const a = await producer.publish('sales', { sku: 'A1', quantity: '3' });
    const b = await producer.publish('sales', { sku: 'B2', quantity: '1' });
    const listed = await entries(client, keysOf(prefix, 'sales', 'g', 'shop').stream);
    expect(listed).toEqual([
      { id: a, fields: { sku: 'A1', quantity: '3' } },
      { id: b, fields: { sku: 'B2', quantity: '1' } },
    ]);
  });

  it.each([
    ['an empty stream name', '', { a: '1' }],
    ['no fields', 'sales', {}],
    ['a number value', 'sales', { quantity: 3 }],
    ['fields that are not an object', 'sales', 'sku=A1'],
  ])('rejects %s with InvalidArgumentError before sending anything', async (_label, stream, fields) => {
    const prefix = uniquePrefix();
    const producer = new StreamProducer(client, { prefix });
    await expect(producer.publish(stream, fields as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.exists(keysOf(prefix, 'sales').stream)).toBe(0);
  });

  it('rejects a prefix or space that could move the hash tag', () => {
    expect(() => new StreamProducer(client, { prefix: 'a{b}' })).toThrow(InvalidArgumentError);
    expect(() => new StreamProducer(client, { space: '' })).toThrow(InvalidArgumentError);
  });

  const handler = () => undefined;
  it.each<[string, Partial<StreamConsumerOptions<unknown>>]>([
    ['an empty stream', { stream: '' }],
    ['an empty group', { group: '' }],
    ['a missing handler', { handler: undefined as never }],
    ['an unknown mode', { mode: 'fanout' as never }],
    ['initialState in competing mode', { mode: 'competing', initialState: { n: 0 } }],
    ['a fractional batchSize', { batchSize: 2.5 }],
    ['a batchSize above 1000', { batchSize: 1_001 }],
    ['a leaseMs below 100', { leaseMs: 50 }],
    ['a zero blockMs', { blockMs: 0 }],
    ['a zero maxDeliveries', { maxDeliveries: 0 }],
    ['a negative retryDelayMs', { retryDelayMs: -1 }],
    ['a maxRetryDelayMs below retryDelayMs', { retryDelayMs: 100, maxRetryDelayMs: 10 }],
    ['a dead-letter stream equal to the stream', { deadLetterStream: 'sales' }],
    ['a codec without decode', { initialState: {}, codec: { encode: () => '' } as never }],
    ['a prefix with a brace', { prefix: 'x{' }],
  ])('rejects %s with InvalidArgumentError before anything is written', async (_label, overrides) => {
    const prefix = uniquePrefix();
    const build = () => new StreamConsumer(client, { prefix, stream: 'sales', group: 'g', handler, ...overrides } as StreamConsumerOptions<unknown>);
    expect(build).toThrow(InvalidArgumentError);
    const k = keysOf(prefix, 'sales');
    expect(await client.exists([k.stream, k.group])).toBe(0);
  });

  it('rejects an initialState the codec cannot round-trip with StreamCodecError', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => new StreamConsumer(client, { stream: 's', group: 'g', handler, initialState: circular })).toThrow(StreamCodecError);
  });

  it('refuses to start again once stopped', async () => {
    const c = new StreamConsumer(client, { prefix: uniquePrefix(), stream: 's', group: 'g', handler, mode: 'competing' });
    await c.stop();
    expect(c.status).toBe('stopped');
    await expect(c.start()).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('@x/streams exports', () => {
  it('re-exports XRedisError and InvalidArgumentError from @x/redis-core', async () => {
    const streams = await import('../src');
    const core = await import('@x/redis-core');
    expect(streams.XRedisError).toBe(core.XRedisError);
    expect(streams.InvalidArgumentError).toBe(core.InvalidArgumentError);
    expect(new streams.StreamFencedError('x')).toBeInstanceOf(streams.XRedisError);
  });
});
