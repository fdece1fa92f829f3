import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AutoResetEvent } from '@x/event';
import { IdempotencyStore } from '@x/idempotency';
import { Lock } from '@x/lock';
import { XInstrumentation } from '@x/otel';
import { Quota } from '@x/quota';
import type { Example } from './demo';

// @x/otel turns every @x operation into an OpenTelemetry span and into metrics. Here they go to
// in-memory exporters and are printed; in a service they go to OTLP, Prometheus, the console...
const demo: Example = async (client) => {
  const run = `${Date.now()}`;
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = new XInstrumentation({ enabled: false });
  instrumentation.setTracerProvider(tracerProvider);
  instrumentation.setMeterProvider(meterProvider);
  instrumentation.enable();
  try {
    // A lock handed from one holder to a waiter.
    const lock = new Lock(client, `otel-relay-${run}`, { ttlMs: 10_000 });
    const first = await lock.acquire();
    const second = lock.acquire({ timeoutMs: 5_000 });
    while ((await lock.inspect()).waiters === 0) await new Promise((r) => setTimeout(r, 5));
    await first.release();
    await (await second).release();
    // A quota that runs dry, an event wait that times out, an idempotent call replayed.
    const quota = new Quota(client);
    await quota.setAvailable(`otel-wallet-${run}`, 5);
    await quota.tryConsume(`otel-wallet-${run}`, 3);
    await quota.tryConsume(`otel-wallet-${run}`, 3);
    await new AutoResetEvent(client, `otel-job-${run}`, { ttlMs: 10_000 }).wait({ timeoutMs: 50 }).catch(() => undefined);
    const store = new IdempotencyStore(client, { ttlMs: 60_000 });
    await store.run(`otel-order-${run}`, async () => ({ id: 7 }));
    await store.run(`otel-order-${run}`, async () => ({ id: 8 }));
  } finally {
    instrumentation.disable();
  }

  console.log('spans (name, resource, outcome, attributes):');
  for (const span of spans.getFinishedSpans()) {
    const a = span.attributes;
    const extra = Object.entries(a)
      .filter(([k]) => ['x.fence', 'x.wait_ms', 'x.remaining', 'x.handedOff', 'error.type'].includes(k))
      .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : v}`);
    console.log(`  ${span.name.padEnd(18)} ${String(a['x.resource']).replace(`-${run}`, '').padEnd(13)} ${String(a['x.outcome']).padEnd(9)} ${extra.join(' ')}`);
  }

  await reader.forceFlush();
  console.log('metrics:');
  for (const m of metricExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))) {
    for (const p of m.dataPoints) {
      const labels = Object.values(p.attributes).join(' ');
      const value = typeof p.value === 'number' ? String(p.value) : `count=${p.value.count} sum=${(p.value.sum ?? 0).toFixed(4)}s`;
      console.log(`  ${m.descriptor.name.padEnd(24)} ${labels.padEnd(44)} ${value}`);
    }
  }
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
};

export default demo;
