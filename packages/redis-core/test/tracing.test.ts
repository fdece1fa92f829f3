import { channel, tracingChannel, type TracingChannelSubscribers } from 'node:diagnostics_channel';
import { operation, pointEvent, tracingChannels, type OperationContext } from '../src';

type Handlers = TracingChannelSubscribers<OperationContext>;
const noop = (): void => undefined;
/** Every tracing-channel event, with the ones a test watches filled in. */
function handlersFor(some: Partial<Handlers>): Handlers {
  return { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop, ...some };
}

class Refused extends Error {
  readonly code = 'NOT_HELD';
}

describe('operation tracing', () => {
  const op = operation<{ fence: number }>('test', 'take', {
    script: 'test.take',
    outcome: (_r, ms) => (ms > 1_000 ? 'waited' : 'granted'),
    fields: (r) => ({ fence: r.fence }),
    errors: { NOT_HELD: 'refused' },
  });

  it('runs the call untouched when nobody subscribes (the same promise comes back)', () => {
    const promise = Promise.resolve({ fence: 1 });
    expect(op.trace('r', () => promise)).toBe(promise);
  });

  it('gives subscribers one context with the resource, outcome, duration and result fields', async () => {
    const seen: Array<[string, OperationContext]> = [];
    const handlers = handlersFor({
      start: (c) => void seen.push(['start', { ...c }]),
      asyncEnd: (c) => void seen.push(['asyncEnd', c]),
      error: (c) => void seen.push(['error', c]),
    });
    const ch = tracingChannel<unknown, OperationContext>('x:test:take');
    ch.subscribe(handlers);
    try {
      await expect(op.trace('orders:1', async () => ({ fence: 42 }), { permits: 2 })).resolves.toEqual({ fence: 42 });
      expect(seen.map(([e]) => e)).toEqual(['start', 'asyncEnd']);
      expect(seen[0]![1]).toMatchObject({ package: 'test', operation: 'take', resource: 'orders:1', script: 'test.take', permits: 2 });
      expect(seen[0]![1].outcome).toBeUndefined();
      const end = seen[1]![1];
      expect(end).toMatchObject({ outcome: 'granted', fence: 42, result: { fence: 42 } });
      expect(end.durationMs).toBeGreaterThanOrEqual(0);
    } finally {
      ch.unsubscribe(handlers);
    }
  });

  it('maps a declared error code to its outcome and anything else to failed, and rethrows', async () => {
    const ends: OperationContext[] = [];
    const handlers = handlersFor({ asyncEnd: (c) => void ends.push(c) });
    const ch = tracingChannel<unknown, OperationContext>('x:test:take');
    ch.subscribe(handlers);
    try {
      const refused = new Refused('no');
      await expect(op.trace('a', () => Promise.reject(refused))).rejects.toBe(refused);
      await expect(op.trace('b', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expect(ends.map((c) => [c.resource, c.outcome, c.error instanceof Error])).toEqual([
        ['a', 'refused', true],
        ['b', 'failed', true],
      ]);
    } finally {
      ch.unsubscribe(handlers);
    }
  });
});

describe('operation tracing of waits', () => {
  it('sets waitMs only for results that waited, and for every failure', async () => {
    const op = operation<{ waited: boolean }>('test', 'wait', { waits: (r) => r.waited, errors: { TIMEOUT: 'timed-out' } });
    const ends: OperationContext[] = [];
    const handlers = handlersFor({ asyncEnd: (c) => void ends.push(c) });
    const ch = tracingChannel<unknown, OperationContext>('x:test:wait');
    ch.subscribe(handlers);
    try {
      await op.trace('a', async () => ({ waited: false }));
      await op.trace('b', async () => ({ waited: true }));
      await op.trace('c', () => Promise.reject(Object.assign(new Error('late'), { code: 'TIMEOUT' }))).catch(() => undefined);
      expect(ends.map((c) => [c.resource, c.outcome, typeof c.waitMs])).toEqual([
        ['a', 'ok', 'undefined'],
        ['b', 'ok', 'number'],
        ['c', 'timed-out', 'number'],
      ]);
    } finally {
      ch.unsubscribe(handlers);
    }
  });
});

describe('pointEvent', () => {
  it('publishes package, event, resource and fields only to subscribers', () => {
    const ev = pointEvent('test', 'lease-lost');
    const got: unknown[] = [];
    const listener = (m: unknown) => got.push(m);
    ev.publish('unseen');
    channel('x:test:lease-lost').subscribe(listener);
    ev.publish('orders:1', { fence: 7 });
    channel('x:test:lease-lost').unsubscribe(listener);
    expect(got).toEqual([{ package: 'test', event: 'lease-lost', resource: 'orders:1', fence: 7 }]);
  });

  it('lists every channel defined in the process', () => {
    expect(tracingChannels()).toEqual(expect.arrayContaining(['x:test:take', 'x:test:wait', 'x:test:lease-lost']));
  });
});
