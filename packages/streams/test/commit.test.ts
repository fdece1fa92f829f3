import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamProducer } from '../src';
import { commitCompetingScript, commitStatefulScript } from '../src/commit';
import { acquireScript } from '../src/lease';
import { parseRead } from '../src/message';
import { STATEFUL_CONSUMER } from '../src/options';
import { readCompetingScript, readStatefulScript } from '../src/read';
import { entries, groupHash, keysOf } from './helpers';

// The commit scripts driven directly, the way a consumer whose connection broke would drive them.
describe.each(TARGETS)('the commit script on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  async function setup(n: number) {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'sales');
    const producer = new StreamProducer(client, { prefix });
    for (let i = 0; i < n; i++) await producer.publish('sales', { i: String(i) });
    const grant = (await acquireScript.run(client, [k.group, k.stream], ['A', 60_000, 'g', 'stateful'])) as unknown[];
    const epoch = String(grant[1]);
    const read = parseRead((await readStatefulScript.run(client, [k.group, k.stream], ['A', epoch, 'g', STATEFUL_CONSUMER, 2])) as unknown[], 0);
    return { prefix, k, epoch, read };
  }

  function commitArgs(token: string, epoch: string, ids: string[], state: string, readCount = 0) {
    // One publish per message to 'alerts' (KEYS[3]).
    const pubs = ids.flatMap((id) => [3, 2, 'from', id]);
    return [token, epoch, 'g', STATEFUL_CONSUMER, 60_000, readCount, 1, state, 0, 0, 0, 1, ids.length, ...ids, ids.length, ...pubs];
  }

  it('a resent commit whose reply was lost writes nothing again and answers the same', async () => {
    const { k, epoch, read } = await setup(4);
    const ids = read.messages.map((m) => m.id);
    const keys = [k.group, k.stream, k.out('alerts')];
    const first = (await commitStatefulScript(1).run(client, keys, commitArgs('A', epoch, ids, '{"n":2}', 2))) as unknown[];
    const resent = (await commitStatefulScript(1).run(client, keys, commitArgs('A', epoch, ids, '{"n":2}', 2))) as unknown[];
    expect(resent[0]).toBe(first[0]);
    expect(resent[0]).toBe('committed');
    // The same next batch: the resend re-reads what the lost reply delivered.
    const ids1 = parseRead(first, 2).messages.map((m) => m.id);
    const ids2 = parseRead(resent, 2).messages.map((m) => m.id);
    expect(ids2).toEqual(ids1);
    expect(ids1).toHaveLength(2);
    expect((await entries(client, k.out('alerts'))).map((e) => e.fields.from)).toEqual(ids);
    const stored = await groupHash(client, k.group);
    expect([stored.state, stored.pos]).toEqual(['{"n":2}', ids[1]]);
  });

  it('refuses a commit from an epoch that was taken over with STREAM_FENCED, writing nothing', async () => {
    const { k, epoch, read } = await setup(2);
    const ids = read.messages.map((m) => m.id);
    // The lease runs out (a paused process) and another instance takes the group.
    await client.hSet(k.group, 'expires', '0');
    const taken = (await acquireScript.run(client, [k.group, k.stream], ['B', 60_000, 'g', 'stateful'])) as unknown[];
    expect(taken[0]).toBe(1);
    expect(BigInt(String(taken[1]))).toBeGreaterThan(BigInt(epoch));
    const keys = [k.group, k.stream, k.out('alerts')];
    await expect(commitStatefulScript(1).run(client, keys, commitArgs('A', epoch, ids, '{"zombie":true}'))).rejects.toMatchObject({
      code: 'STREAM_FENCED',
      name: 'StreamFencedError',
    });
    expect(await client.exists(k.out('alerts'))).toBe(0);
    const stored = await groupHash(client, k.group);
    expect(stored.state).toBeUndefined();
    expect(stored.pos).toBeUndefined();
    const pending = (await client.xPending(k.stream, 'g')) as { pending: number };
    expect(pending.pending).toBe(2);
  });

  it('validates the whole batch before its first write: one message not pending applies nothing', async () => {
    const { k, epoch, read } = await setup(3);
    const ids = read.messages.map((m) => m.id);
    // The third entry was never delivered to the processor.
    const all = await entries(client, k.stream);
    const bogus = [...ids, all[2]!.id];
    const keys = [k.group, k.stream, k.out('alerts')];
    await expect(commitStatefulScript(1).run(client, keys, commitArgs('A', epoch, bogus, '{"n":3}'))).rejects.toMatchObject({ code: 'STREAM_FENCED' });
    expect(await client.exists(k.out('alerts'))).toBe(0);
    expect((await groupHash(client, k.group)).state).toBeUndefined();
    expect(((await client.xPending(k.stream, 'g')) as { pending: number }).pending).toBe(2);
  });

  it('applies nothing when an output key holds another type (no half-applied commit)', async () => {
    const { k, epoch, read } = await setup(2);
    const ids = read.messages.map((m) => m.id);
    await client.set(k.out('alerts'), 'a string');
    const keys = [k.group, k.stream, k.out('alerts')];
    await expect(commitStatefulScript(1).run(client, keys, commitArgs('A', epoch, ids, '{"n":2}'))).rejects.toMatchObject({ code: 'STREAM_WRONGTYPE' });
    expect((await groupHash(client, k.group)).state).toBeUndefined();
    expect(((await client.xPending(k.stream, 'g')) as { pending: number }).pending).toBe(2);
  });

  it('rejects malformed arguments inside the script before any write', async () => {
    const { k, epoch, read } = await setup(1);
    const ids = read.messages.map((m) => m.id);
    const keys = [k.group, k.stream, k.out('alerts')];
    const args = commitArgs('A', epoch, ids, '{}');
    args[5] = 'lots';
    await expect(commitStatefulScript(1).run(client, keys, args)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const truncated = commitArgs('A', epoch, ids, '{}').slice(0, -1);
    await expect(commitStatefulScript(1).run(client, keys, truncated)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await client.exists(k.out('alerts'))).toBe(0);
    expect((await groupHash(client, k.group)).state).toBeUndefined();
  });

  it('competing: a resent commit answers the same, and a message claimed by another consumer is not applied', async () => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'jobs');
    const producer = new StreamProducer(client, { prefix });
    for (let i = 0; i < 2; i++) await producer.publish('jobs', { i: String(i) });
    await acquireScript.run(client, [k.group, k.stream], ['-', 1_000, 'g', 'competing']);
    const read = parseRead((await readCompetingScript.run(client, [k.group, k.stream], ['g', 'c1', 10, 0, '', 60_000])) as unknown[], 0);
    const ids = read.messages.map((m) => m.id);
    expect(ids).toHaveLength(2);
    // c2 claims the second message (c1 looked dead to it).
    await client.xClaim(k.stream, 'g', 'c2', 0, ids[1]!);
    const keys = [k.group, k.stream, k.out('done')];
    const args = ['g', 'c1', '7', 0, 0, '', 0, 0, 0, 1, 2, ...ids, 2, 1, 3, 2, 'i', '0', 2, 3, 2, 'i', '1'];
    const first = (await commitCompetingScript(1).run(client, keys, args)) as unknown[];
    const resent = (await commitCompetingScript(1).run(client, keys, args)) as unknown[];
    expect(first).toEqual(['committed', ids[1]]);
    expect(resent).toEqual(first);
    expect((await entries(client, k.out('done'))).map((e) => e.fields.i)).toEqual(['0']);
    const pending = (await client.xPendingRange(k.stream, 'g', '-', '+', 10)) as Array<{ id: string; consumer: string }>;
    expect(pending.map((p) => [p.id, p.consumer])).toEqual([[ids[1], 'c2']]);
  });
});
