import { tracingChannel } from 'node:diagnostics_channel';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type HistogramMetricData,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { tracingChannels, WakeBus } from '@x/redis-core';
import { AutoResetEvent, CountDownLatch, ManualResetEvent } from '@x/event';
import { IdempotencyStore } from '@x/idempotency';
import { LeasedKeyQueue } from '@x/leasedkeyq';
import { Lock } from '@x/lock';
import { Quota } from '@x/quota';
import { Semaphore } from '@x/semaphore';
import { StreamProducer } from '@x/streams';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { EVENTS, OPERATIONS, XInstrumentation } from '../src';

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const instrumentation = new XInstrumentation({ enabled: false });

beforeAll(() => {
  registerInstrumentations({ instrumentations: [instrumentation], tracerProvider, meterProvider });
});
afterAll(async () => {
  instrumentation.disable();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});
beforeEach(() => spans.reset());

/** The finished spans' names and chosen attributes, in the order they ended. */
const ended = (...attrs: string[]) =>
  spans.getFinishedSpans().map((s) => [s.name, ...attrs.map((a) => s.attributes[a])]);

async function metric<T>(name: string): Promise<T | undefined> {
  metricExporter.reset();
  await reader.forceFlush();
  for (const rm of metricExporter.getMetrics()) {
    for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.descriptor.name === name) return m as T;
  }
  return undefined;
}

describe('XInstrumentation', () => {
  it('follows the OpenTelemetry instrumentation shape and is enabled by registerInstrumentations', () => {
    expect(instrumentation.instrumentationName).toBe('@x/otel');
    expect(typeof instrumentation.instrumentationVersion).toBe('string');
    expect(instrumentation.getConfig().enabled).toBe(true);
  });

  it('lists exactly the channels the packages define', () => {
    // Importing the packages above defined their channels in this process.
    expect([Lock, Semaphore, AutoResetEvent, Quota, IdempotencyStore, StreamProducer, LeasedKeyQueue].every((c) => typeof c === 'function')).toBe(true);
    const listed = [...Object.entries(OPERATIONS), ...Object.entries(EVENTS)].flatMap(([pkg, names]) => names.map((n) => `x:${pkg}:${n}`));
    expect(listed.sort()).toEqual(tracingChannels());
  });
});

describe.each(TARGETS)('spans and metrics on %s', (target) => {
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

  it('traces quota operations with their outcome, remaining and refusal code', async () => {
    const quota = new Quota(client, { prefix });
    await quota.topUp('wallet:1', 10);
    await quota.tryConsume('wallet:1', 4);
    await quota.tryConsume('wallet:1', 40);
    await expect(quota.reserve('wallet:1', 100)).rejects.toThrow();
    expect(ended('db.system.name', 'db.operation.name', 'x.resource', 'x.outcome', 'x.remaining', 'error.type')).toEqual([
      ['quota.topUp', 'redis', 'quota.topUp', 'wallet:1', 'ok', undefined, undefined],
      ['quota.tryConsume', 'redis', 'quota.tryConsume', 'wallet:1', 'ok', 6, undefined],
      ['quota.tryConsume', 'redis', 'quota.tryConsume', 'wallet:1', 'refused', 6, undefined],
      ['quota.reserve', 'redis', 'quota.reserve', 'wallet:1', 'refused', undefined, 'INSUFFICIENT_QUOTA'],
    ]);
    expect(spans.getFinishedSpans().map((s) => s.attributes['x.script'])).toEqual(['quota.topUp', 'quota.tryConsume', 'quota.tryConsume', 'quota.reserve']);
  });

  it('traces event waits with their wait time, and counts a timeout', async () => {
    const before = (await metric<SumMetricData>('x.timeouts'))?.dataPoints.reduce((n, p) => n + p.value, 0) ?? 0;
    const event = new AutoResetEvent(client, 'jobs', { prefix });
    const inFlight = async () =>
      (await metric<SumMetricData>('x.operations.in_flight'))?.dataPoints.find((p) => p.attributes['db.operation.name'] === 'event.wait')?.value ?? 0;
    const waiting = event.wait({ timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(await inFlight()).toBe(1);
    await event.set();
    await waiting;
    expect(await inFlight()).toBe(0);
    await expect(new ManualResetEvent(client, 'gate', { prefix }).wait({ timeoutMs: 20 })).rejects.toThrow();
    const latch = new CountDownLatch(client, 'shards', { prefix, count: 2 });
    await latch.countDown();
    const names = ended('x.kind', 'x.outcome');
    expect(names).toEqual([
      ['event.set', 'auto-reset', 'ok'],
      ['event.wait', 'auto-reset', 'ok'],
      ['event.wait', 'manual-reset', 'timed-out'],
      ['event.countDown', 'latch', 'ok'],
    ]);
    const waits = spans.getFinishedSpans().filter((s) => s.name === 'event.wait');
    expect(waits[0]!.attributes['x.wait_ms']).toBeGreaterThanOrEqual(40);
    expect(spans.getFinishedSpans().find((s) => s.name === 'event.countDown')!.attributes['x.count']).toBe(1);
    expect(waits[1]!.status.code).toBe(0); // a timeout is an outcome, not a span error

    const timeouts = await metric<SumMetricData>('x.timeouts');
    expect(timeouts!.dataPoints.reduce((n, p) => n + p.value, 0)).toBe(before + 1);
    const durations = await metric<HistogramMetricData>('x.operation.duration');
    const waitPoints = durations!.dataPoints.filter((p) => p.attributes['db.operation.name'] === 'event.wait');
    expect(waitPoints.map((p) => p.attributes['x.outcome']).sort()).toEqual(expect.arrayContaining(['ok', 'timed-out']));
    const waited = await metric<HistogramMetricData>('x.wait.duration');
    expect(waited!.dataPoints.some((p) => p.attributes['db.operation.name'] === 'event.wait' && p.value.count >= 1)).toBe(true);
  });

  it('traces a lock hand-off: the waiter span waited, the release counts a hand-off event', async () => {
    const before = (await metric<SumMetricData>('x.events'))?.dataPoints.find((p) => p.attributes['x.package'] === 'lock' && p.attributes['x.event'] === 'hand-off')?.value ?? 0;
    const lock = new Lock(client, 'relay', { prefix });
    const held = await lock.acquire();
    const waiting = lock.acquire({ timeoutMs: 10_000 });
    while ((await lock.inspect()).waiters === 0) await new Promise((r) => setTimeout(r, 5));
    await held.release();
    const next = await waiting;
    await next.release();
    const acquires = spans.getFinishedSpans().filter((s) => s.name === 'lock.acquire');
    expect(acquires.map((s) => [s.attributes['x.resource'], s.attributes['x.outcome'], s.attributes['x.fence']])).toEqual([
      ['relay', 'granted', held.fence],
      ['relay', 'waited', next.fence],
    ]);
    const events = await metric<SumMetricData>('x.events');
    const handOffs = events!.dataPoints.find((p) => p.attributes['x.package'] === 'lock' && p.attributes['x.event'] === 'hand-off');
    expect(handOffs!.value).toBe(before + 1);
  });

  it('marks an unexpected failure as a span error with the exception recorded', async () => {
    const quota = new Quota(client, { prefix });
    await expect(quota.tryConsume('wallet:2', 0)).rejects.toThrow();
    const [span] = spans.getFinishedSpans();
    expect(span!.name).toBe('quota.tryConsume');
    expect(span!.attributes['x.outcome']).toBe('failed');
    expect(span!.attributes['error.type']).toBe('INVALID_ARGUMENT');
    expect(span!.status.code).toBe(2);
    expect(span!.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('records nothing once disabled, and again once re-enabled', async () => {
    const quota = new Quota(client, { prefix });
    instrumentation.disable();
    await quota.topUp('wallet:3', 1);
    expect(spans.getFinishedSpans()).toHaveLength(0);
    expect(tracingChannel('x:quota:topUp').hasSubscribers).toBe(false);
    instrumentation.enable();
    await quota.topUp('wallet:3', 1);
    expect(spans.getFinishedSpans()).toHaveLength(1);
  });

  it('subscribes once however often it is enabled', () => {
    instrumentation.enable();
    instrumentation.enable();
    instrumentation.disable();
    expect(tracingChannel('x:quota:topUp').hasSubscribers).toBe(false);
    instrumentation.enable();
    expect(tracingChannel('x:quota:topUp').hasSubscribers).toBe(true);
  });
});
