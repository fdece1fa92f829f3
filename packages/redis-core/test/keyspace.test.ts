import { connect, uniquePrefix, type TestClient } from '@x/testing';
import { InvalidArgumentError, MAX_NAME_BYTES, keyspace } from '../src';

describe('keyspace', () => {
  it('puts every key and the channel of a resource inside one hash tag', () => {
    const ks = keyspace('x', 'quota', 'wallet:123');
    expect(ks.key('state')).toBe('x:quota:{wallet:123}:state');
    expect(ks.channel).toBe('x:quota:{wallet:123}:wake');
  });

  it('never lets two names that differ only by braces share keys', () => {
    const names = ['a{b}', 'a%7Bb%7D', 'ab', '{a}b', 'a}{b', '%7Ba%7Db', 'a%b', 'a%25b'];
    const keys = names.map((n) => keyspace('x', 'lock', n).key('state'));
    expect(new Set(keys).size).toBe(names.length);
    for (const key of keys) expect(key.match(/[{}]/g)).toEqual(['{', '}']);
  });

  it.each(['', 'x'.repeat(MAX_NAME_BYTES + 1), 42, null, undefined])('rejects the name %p', (name) => {
    expect(() => keyspace('x', 'lock', name as string)).toThrow(InvalidArgumentError);
  });

  it.each(['', 'a{b', 'a}b'])('rejects the prefix %p', (prefix) => {
    expect(() => keyspace(prefix, 'lock', 'n')).toThrow(InvalidArgumentError);
  });

  it.each(['\uD800', '\uDC00', 'a\uD800b', 'a\uDFFF'])('refuses the name %j, which UTF-8 would turn into U+FFFD', (name) => {
    expect(() => keyspace('x', 'lock', name)).toThrow(/well-formed UTF-16/);
  });

  it('accepts names with characters outside the BMP (surrogate pairs)', () => {
    expect(keyspace('x', 'lock', 'order:\u{1F600}').key('state')).toBe('x:lock:{order:\u{1F600}}:state');
  });

  it('accepts a name of exactly the maximum length', () => {
    expect(() => keyspace('x', 'lock', 'y'.repeat(MAX_NAME_BYTES))).not.toThrow();
  });
});

describe('keyspace on the cluster', () => {
  let cluster: TestClient;
  beforeAll(async () => {
    cluster = await connect('cluster');
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('maps every key and the channel of a resource to one slot, whatever braces the name holds', async () => {
    const prefix = uniquePrefix();
    const slotsByName: number[] = [];
    for (const name of ['plain', 'with{brace}', '}{', '{', 'a{b}c{d}']) {
      const ks = keyspace(prefix, 'lock', name);
      const keys = [ks.key('state'), ks.key('queue'), ks.key('waiters'), ks.channel];
      const slots = new Set(
        await Promise.all(keys.map((k) => (cluster as any).sendCommand(k, true, ['CLUSTER', 'KEYSLOT', k]) as Promise<number>)),
      );
      expect(slots.size).toBe(1);
      slotsByName.push([...slots][0]!);
    }
    // Different names do land in different slots (the tag is the name, not something constant).
    expect(new Set(slotsByName).size).toBeGreaterThan(1);
  });
});
