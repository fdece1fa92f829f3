import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { InvalidArgumentError, keyspace, nameOfKey, scanKeys, scanNames } from '../src';

describe.each(TARGETS)('scanNames on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await client.close();
  });

  it('finds the resources of a kind on every master, unescaped, and nothing else', async () => {
    const prefix = uniquePrefix();
    const names = Array.from({ length: 40 }, (_, i) => `r${i}`).concat(['a{b}', '50%', 'x*y', 'c}:holders']);
    for (const name of names) await client.set(keyspace(prefix, 'lock', name).key('holders'), '1');
    await client.set(keyspace(prefix, 'lock', 'other').key('grants'), '1');
    await client.set(keyspace(prefix, 'semaphore', 'sem').key('holders'), '1');
    await client.set(keyspace(`${prefix}x`, 'lock', 'p').key('holders'), '1');
    expect(await scanNames(client, prefix, 'lock', ['holders'])).toEqual([...names].sort());
    expect(await scanNames(client, prefix, 'lock', ['holders'], { limit: 3 })).toHaveLength(3);
    expect((await scanKeys(client, `${prefix}:*`)).length).toBe(names.length + 2);
  });

  it('rejects a bad limit or prefix', async () => {
    await expect(scanNames(client, 'x', 'lock', ['holders'], { limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(scanNames(client, '', 'lock', ['holders'])).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('nameOfKey', () => {
  it('unescapes the hash tag and ignores keys of another head', () => {
    expect(nameOfKey('x:lock:{', keyspace('x', 'lock', 'a{b}%c').key('holders'))).toBe('a{b}%c');
    expect(nameOfKey('x:lock:{', 'x:semaphore:{a}:holders')).toBeNull();
  });
});
