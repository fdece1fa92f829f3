import fc from 'fast-check';
import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, onEveryNode, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer, type StreamMessage, type StreamTransaction } from '../src';
import { entries, keysOf, until } from './helpers';

// Random runs against an in-memory model: publishes of healthy, flaky (fail a few times, then
// succeed) and poison (always fail) messages, interleaved with consumers that drain the stream or
// stop part-way. No message's effect may be lost or applied twice; poison lands in the dead
// letters; stateful processing keeps stream order.

type Kind = 'ok' | 'flaky' | 'poison';
interface Spec {
  kind: Kind;
  v: number;
  pubs: number;
  fails: number;
}
type Step = { t: 'publish'; msgs: Spec[] } | { t: 'run'; batch: number; stopAfter: number | null; consumers: number; trim: boolean };
type State = { count: number; sum: number; digest: number };

const MAX_DELIVERIES = 3;
const P = 1_000_003;

const specArb: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom<Kind>('ok', 'ok', 'ok', 'flaky', 'poison'),
  v: fc.integer({ min: 0, max: 100 }),
  pubs: fc.integer({ min: 0, max: 2 }),
  fails: fc.integer({ min: 1, max: MAX_DELIVERIES - 1 }),
});
const stepsArb: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    fc.record({ t: fc.constant('publish' as const), msgs: fc.array(specArb, { minLength: 1, maxLength: 10 }) }),
    fc.record({
      t: fc.constant('run' as const),
      batch: fc.integer({ min: 1, max: 8 }),
      stopAfter: fc.option(fc.integer({ min: 1, max: 8 })),
      consumers: fc.integer({ min: 1, max: 3 }),
      // The source trimmed as acknowledged: it must never cost a message still pending.
      trim: fc.boolean(),
    }),
  ),
  { minLength: 1, maxLength: 6 },
);

function apply(state: State, i: number, spec: Spec): void {
  state.count += 1;
  state.sum += spec.v;
  state.digest = (state.digest * 31 + i) % P;
}

function handle(message: StreamMessage, tx: StreamTransaction<State | null>): void {
  const i = Number(message.fields.i);
  const spec = JSON.parse(message.fields.spec!) as Spec;
  if (tx.state) apply(tx.state, i, spec);
  for (let j = 0; j < spec.pubs; j++) tx.publish('out', { i: String(i), j: String(j) });
  if (spec.kind === 'poison') throw new Error(`poison ${i}`);
  if (spec.kind === 'flaky' && message.deliveries <= spec.fails) throw new Error(`flaky ${i}`);
}

describe.each(TARGETS)('exactly-once processing against a model on %s', (target) => {
  let client: TestClient;
  // Runs in which trimming really removed entries: the trim checks must not be vacuous.
  let trimmedRuns = 0;
  beforeAll(async () => {
    client = await connect(target);
    // Small stream nodes, so that approximate trimming (whole nodes only) acts on short streams.
    await onEveryNode(target, ['CONFIG', 'SET', 'stream-node-max-entries', '4']);
  });
  afterAll(async () => {
    await onEveryNode(target, ['CONFIG', 'SET', 'stream-node-max-entries', '100']);
    await WakeBus.close(client);
    await client.close();
  });

  async function play(mode: 'stateful' | 'competing', steps: Step[]): Promise<void> {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'events');
    const producer = new StreamProducer(client, { prefix });
    const published: Spec[] = [];
    const expected: State = { count: 0, sum: 0, digest: 0 };
    const expectedOut: string[] = [];
    const expectedDead: string[] = [];
    const run = async (batch: number, stopAfter: number | null, consumers: number, trim = false) => {
      let calls = 0;
      const group: Array<StreamConsumer<State | null>> = [];
      for (let c = 0; c < (mode === 'stateful' ? Math.min(consumers, 2) : consumers); c++) {
        const consumer: StreamConsumer<State | null> = new StreamConsumer<State | null>(client, {
          prefix,
          stream: 'events',
          group: 'g',
          mode,
          ...(mode === 'stateful' ? { initialState: { count: 0, sum: 0, digest: 0 } } : {}),
          batchSize: batch,
          blockMs: 100,
          retryDelayMs: 0,
          maxRetryDelayMs: 1,
          maxDeliveries: MAX_DELIVERIES,
          claimIdleMs: 5_000,
          trim: trim ? 'acknowledged' : 'never',
          handler: (message, tx) => {
            calls += 1;
            if (stopAfter !== null && calls === stopAfter) void consumer.stop();
            handle(message, tx);
          },
        });
        group.push(consumer);
      }
      await Promise.all(group.map((c) => c.start()));
      // Drained: the group delivered the stream's last entry and nothing is pending.
      const done = async () => {
        const last = ((await client.xRevRange(k.stream, '+', '-', { COUNT: 1 })) as Array<{ id: string }>)[0]?.id ?? '0-0';
        const groups = (await client.xInfoGroups(k.stream)) as Array<Record<string, unknown>>;
        const g = groups.find((x) => x.name === 'g');
        return !!g && g['last-delivered-id'] === last && g.pending === 0;
      };
      await until(async () => (stopAfter !== null && group.some((c) => c.status === 'stopped')) || (await done()), 'run settled');
      await Promise.all(group.map((c) => c.stop()));
    };
    for (const step of steps) {
      if (step.t === 'publish') {
        for (const spec of step.msgs) {
          const i = published.length;
          published.push(spec);
          await producer.publish('events', { i: String(i), spec: JSON.stringify(spec) });
          if (spec.kind === 'poison') expectedDead.push(String(i));
          else {
            apply(expected, i, spec);
            for (let j = 0; j < spec.pubs; j++) expectedOut.push(`${i}/${j}`);
          }
        }
      } else {
        await run(step.batch, step.stopAfter, step.consumers, step.trim);
      }
    }
    await run(4, null, 2, true);
    const out = (await entries(client, k.out('out'))).map((e) => `${e.fields.i}/${e.fields.j}`);
    const dead = (await entries(client, k.dead)).map((e) => JSON.parse(e.fields.fields!).i as string);
    if (mode === 'stateful') {
      expect(JSON.parse((await client.hGet(k.group, 'state')) ?? 'null') ?? { count: 0, sum: 0, digest: 0 }).toEqual(expected);
      expect(out).toEqual(expectedOut);
      expect(dead).toEqual(expectedDead);
    } else {
      expect([...out].sort()).toEqual([...expectedOut].sort());
      expect([...dead].sort()).toEqual([...expectedDead].sort());
    }
    expect(((await client.xPending(k.stream, 'g')) as { pending: number }).pending).toBe(0);
    if ((await client.xLen(k.stream)) < published.length) trimmedRuns += 1;
  }

  it('stateful: state, outputs and dead letters equal the model, in stream order', async () => {
    trimmedRuns = 0;
    await fc.assert(fc.asyncProperty(stepsArb, (steps) => play('stateful', steps)), { numRuns: 30 });
    expect(trimmedRuns).toBeGreaterThan(0);
  });

  it('competing: every output once and every poison message dead-lettered once, whatever the interleaving', async () => {
    trimmedRuns = 0;
    await fc.assert(fc.asyncProperty(stepsArb, (steps) => play('competing', steps)), { numRuns: 20 });
    expect(trimmedRuns).toBeGreaterThan(0);
  });
});
