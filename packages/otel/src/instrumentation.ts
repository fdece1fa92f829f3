import { channel, tracingChannel } from 'node:diagnostics_channel';
import {
  SpanKind,
  SpanStatusCode,
  context as otelContext,
  diag,
  metrics,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
  type UpDownCounter,
} from '@opentelemetry/api';
import { EVENTS, OPERATIONS, channelNames } from './channels';

/** What `XInstrumentation` takes; the OpenTelemetry instrumentation config shape. */
export interface XInstrumentationConfig {
  /**
   * Subscribe at construction. `registerInstrumentations` enables it either way.
   * @default true
   */
  enabled?: boolean;
}

/** The fields of a context published by `@x/redis-core`'s `operation()`, as read here. */
interface OperationContext {
  package: string;
  operation: string;
  resource: string;
  script?: string;
  outcome?: string;
  durationMs?: number;
  waitMs?: number;
  fence?: number;
  error?: unknown;
  [field: string]: unknown;
}

interface PointMessage {
  package: string;
  event: string;
  resource: string;
  [field: string]: unknown;
}

interface Instruments {
  inFlight: UpDownCounter;
  duration: Histogram;
  wait: Histogram;
  timeouts: Counter;
  events: Counter;
}

const NAME = '@x/otel';
const VERSION = '0.0.0';
// Context fields the packages publish that become `x.<field>` span attributes when present.
const EXTRA_FIELDS = [
  'kind', 'permits', 'amount', 'cost', 'remaining', 'deliveries', 'count', 'handedOff', 'status', 'group', 'mode', 'messages', 'published', 'key',
] as const;

/**
 * OpenTelemetry instrumentation for every `@x` Redis primitive: a span per public operation and
 * metrics (operation duration, wait time, timeouts, point events such as leases lost and
 * hand-offs), read from the packages' `diagnostics_channel` tracing channels. It imports no
 * primitive and patches nothing.
 *
 * @example
 * import { registerInstrumentations } from '@opentelemetry/instrumentation';
 * registerInstrumentations({ instrumentations: [new XInstrumentation()] });
 * // or, without the SDK's loader:
 * new XInstrumentation().enable();
 */
export class XInstrumentation {
  readonly instrumentationName = NAME;
  readonly instrumentationVersion = VERSION;
  #config: XInstrumentationConfig;
  #tracer: Tracer;
  #instruments: Instruments;
  #unsubscribe: (() => void) | undefined;
  readonly #spans = new WeakMap<object, Span>();

  constructor(config: XInstrumentationConfig = {}) {
    this.#config = { enabled: true, ...config };
    this.#tracer = trace.getTracer(NAME, VERSION);
    this.#instruments = instruments(metrics.getMeterProvider());
    if (this.#config.enabled) this.enable();
  }

  /** Subscribes to every channel; calling it again does nothing. */
  enable(): void {
    if (this.#unsubscribe) return;
    const offs: Array<() => void> = [];
    const ignore = () => undefined;
    // A subscriber that throws would surface as an uncaught exception in the caller's process:
    // report through OpenTelemetry's diag logger instead.
    const guarded =
      <A>(fn: (arg: A) => void) =>
      (arg: A) => {
        try {
          fn(arg);
        } catch (error) {
          diag.error('@x/otel: a tracing-channel handler failed', error);
        }
      };
    const handlers = {
      start: guarded((ctx: OperationContext) => this.#start(ctx)),
      end: ignore,
      asyncStart: ignore,
      error: ignore,
      // Failures publish `error` and then `asyncEnd` too: the span ends there either way.
      asyncEnd: guarded((ctx: OperationContext) => this.#end(ctx)),
    };
    for (const name of channelNames(OPERATIONS)) {
      const ch = tracingChannel<unknown, OperationContext>(name);
      ch.subscribe(handlers);
      offs.push(() => ch.unsubscribe(handlers));
    }
    const onPoint = guarded((message: unknown) => this.#point(message as PointMessage));
    for (const name of channelNames(EVENTS)) {
      channel(name).subscribe(onPoint);
      offs.push(() => channel(name).unsubscribe(onPoint));
    }
    this.#unsubscribe = () => offs.forEach((off) => off());
    this.#config.enabled = true;
  }

  /** Unsubscribes from every channel; operations then cost nothing again. */
  disable(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#config.enabled = false;
  }

  setTracerProvider(provider: TracerProvider): void {
    this.#tracer = provider.getTracer(NAME, VERSION);
  }

  setMeterProvider(provider: MeterProvider): void {
    this.#instruments = instruments(provider);
  }

  setConfig(config: XInstrumentationConfig): void {
    this.#config = { ...this.#config, ...config };
  }

  getConfig(): XInstrumentationConfig {
    return this.#config;
  }

  #start(ctx: OperationContext): void {
    const span = this.#tracer.startSpan(
      `${ctx.package}.${ctx.operation}`,
      { kind: SpanKind.CLIENT, attributes: startAttributes(ctx) },
      otelContext.active(),
    );
    this.#spans.set(ctx, span);
    this.#instruments.inFlight.add(1, { 'x.package': ctx.package, 'db.operation.name': `${ctx.package}.${ctx.operation}` });
  }

  #end(ctx: OperationContext): void {
    const span = this.#spans.get(ctx);
    if (!span) return;
    this.#spans.delete(ctx);
    this.#instruments.inFlight.add(-1, { 'x.package': ctx.package, 'db.operation.name': `${ctx.package}.${ctx.operation}` });
    const outcome = ctx.outcome ?? (ctx.error === undefined ? 'ok' : 'failed');
    span.setAttributes(endAttributes(ctx, outcome));
    if (outcome === 'failed') {
      if (ctx.error instanceof Error) span.recordException(ctx.error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.error instanceof Error ? ctx.error.message : String(ctx.error) });
    }
    span.end();
    const attrs = { 'x.package': ctx.package, 'db.operation.name': `${ctx.package}.${ctx.operation}`, 'x.outcome': outcome };
    if (ctx.durationMs !== undefined) this.#instruments.duration.record(ctx.durationMs / 1000, attrs);
    if (ctx.waitMs !== undefined) this.#instruments.wait.record(ctx.waitMs / 1000, attrs);
    if (outcome === 'timed-out') this.#instruments.timeouts.add(1, attrs);
  }

  #point(message: PointMessage): void {
    this.#instruments.events.add(1, { 'x.package': message.package, 'x.event': message.event });
    const span = trace.getSpan(otelContext.active());
    span?.addEvent(`x.${message.package}.${message.event}`, { 'x.resource': message.resource });
  }
}

function instruments(provider: MeterProvider): Instruments {
  const meter = provider.getMeter(NAME, VERSION);
  return {
    inFlight: meter.createUpDownCounter('x.operations.in_flight', { description: 'Operations started and not yet ended (waiters included).' }),
    duration: meter.createHistogram('x.operation.duration', { unit: 's', description: 'Duration of @x primitive operations.' }),
    wait: meter.createHistogram('x.wait.duration', { unit: 's', description: 'Time operations waited for a grant or a signal.' }),
    timeouts: meter.createCounter('x.timeouts', { description: 'Operations that ended at their own timeout.' }),
    events: meter.createCounter('x.events', { description: 'Point events: leases lost, hand-offs, dead letters, standbys taking over, durability timeouts.' }),
  };
}

function startAttributes(ctx: OperationContext): Attributes {
  const attributes: Attributes = {
    'db.system.name': 'redis',
    'db.operation.name': `${ctx.package}.${ctx.operation}`,
    'x.package': ctx.package,
    'x.resource': ctx.resource,
  };
  if (ctx.script) attributes['x.script'] = ctx.script;
  return attributes;
}

function endAttributes(ctx: OperationContext, outcome: string): Attributes {
  const attributes: Attributes = { 'x.outcome': outcome };
  if (typeof ctx.fence === 'number') attributes['x.fence'] = ctx.fence;
  if (typeof ctx.waitMs === 'number') attributes['x.wait_ms'] = ctx.waitMs;
  for (const field of EXTRA_FIELDS) {
    const value = ctx[field];
    if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') attributes[`x.${field}`] = value;
  }
  const code = (ctx.error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') attributes['error.type'] = code;
  return attributes;
}
