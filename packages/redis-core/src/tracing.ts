import { channel, tracingChannel } from 'node:diagnostics_channel';

/**
 * How a traced operation ended, as an operator would say it.
 *
 * `granted` (at once), `waited` (granted after waiting), `timed-out`, `refused` (a typed business
 * refusal: not held, insufficient, over the limit), `replayed` (a stored result returned again),
 * `fenced` (a newer holder took over), `ok` (any other success), `failed` (any other error).
 */
export type Outcome = 'granted' | 'waited' | 'timed-out' | 'refused' | 'replayed' | 'fenced' | 'ok' | 'failed';

/**
 * The object every subscriber of an operation's tracing channel receives: the same object at
 * `start`, `asyncEnd` and `error`, with `outcome`, `durationMs` and the result's fields filled
 * in before `asyncEnd`. Node adds `result` or `error`.
 */
export interface OperationContext {
  /** The package without its scope: `lock`, `semaphore`, `quota`, ... */
  readonly package: string;
  /** The public operation: `acquire`, `release`, `consume`, ... */
  readonly operation: string;
  /** The resource's name as the caller gave it (a lock's name, a queue's name). */
  readonly resource: string;
  /** The Lua script the operation runs, when there is one (`lock.acquire`). */
  readonly script?: string;
  outcome?: Outcome;
  /** From the call to its reply or error, in milliseconds. */
  durationMs?: number;
  /** Time spent waiting for a grant, where the operation waits. */
  waitMs?: number;
  /** The fencing token of the grant, where there is one. */
  fence?: number;
  result?: unknown;
  error?: unknown;
  [field: string]: unknown;
}

/** What an operation's definition says about its results; each part is optional. */
export interface OperationSpec<T> {
  /** The Lua script's name, for the context's `script`. */
  script?: string;
  /** The outcome of a result (default `ok`). */
  outcome?: (result: T, durationMs: number) => Outcome;
  /** More context fields from a result: `fence`, `remaining`, ... */
  fields?: (result: T) => Record<string, unknown>;
  /** Error codes that mean `timed-out`, `refused` or `fenced` rather than `failed`. */
  errors?: Partial<Record<string, Outcome>>;
  /**
   * The operation waits (for a signal, a grant): its duration is also its `waitMs`; a function
   * says whether a result waited (a grant had at once did not). A failure always counts as waited.
   */
  waits?: boolean | ((result: T) => boolean);
}

/** A traced public operation of one package: see {@link operation}. */
export interface Operation<T> {
  /** The tracing channel's name, `x:<package>:<operation>`. */
  readonly channel: string;
  /** Runs `fn`, traced when somebody subscribes, and costs one property read when nobody does. */
  trace<R extends T>(resource: string, fn: () => Promise<R>, fields?: Record<string, unknown>): Promise<R>;
}

const defined = new Set<string>();

/**
 * Defines the tracing channel of one public operation (Node's `diagnostics_channel.tracingChannel`,
 * named `x:<package>:<operation>`). With no subscriber the wrapped call runs as it is; with one,
 * subscribers get an {@link OperationContext}.
 *
 * @example
 * const acquireOp = operation<LockHandle>('lock', 'acquire', { script: 'lock.acquire', fields: (h) => ({ fence: h.fence }) });
 * acquire(options) { return acquireOp.trace(this.name, () => this.#acquire(options)); }
 *
 * // an operator's side, with no dependency on the package:
 * diagnostics_channel.tracingChannel('x:lock:acquire').subscribe({ asyncEnd: (ctx) => log(ctx.resource, ctx.outcome) });
 */
export function operation<T>(pkg: string, op: string, spec: OperationSpec<T> = {}): Operation<T> {
  const name = `x:${pkg}:${op}`;
  defined.add(name);
  const traced = tracingChannel<unknown, OperationContext>(name);
  return {
    channel: name,
    trace<R extends T>(resource: string, fn: () => Promise<R>, fields?: Record<string, unknown>): Promise<R> {
      if (!traced.hasSubscribers) return fn();
      const context: OperationContext = { package: pkg, operation: op, resource, script: spec.script, ...fields };
      const started = performance.now();
      return traced.tracePromise(async () => {
        try {
          const result = await fn();
          const durationMs = performance.now() - started;
          context.durationMs = durationMs;
          if (spec.waits === true || (typeof spec.waits === 'function' && spec.waits(result))) context.waitMs = durationMs;
          context.outcome = spec.outcome?.(result, durationMs) ?? 'ok';
          if (spec.fields) Object.assign(context, spec.fields(result));
          return result;
        } catch (error) {
          context.durationMs = performance.now() - started;
          if (spec.waits) context.waitMs = context.durationMs;
          const code = (error as { code?: unknown } | null)?.code;
          context.outcome = (typeof code === 'string' && spec.errors?.[code]) || 'failed';
          throw error;
        }
      }, context);
    },
  };
}

/** A point event of one package: see {@link pointEvent}. */
export interface PointEvent {
  /** The channel's name, `x:<package>:<event>`. */
  readonly channel: string;
  /** Publishes `fields` (plus `package`, `event` and `resource`) when somebody subscribes. */
  publish(resource: string, fields?: Record<string, unknown>): void;
}

/**
 * Defines a point event (`lease-lost`, `hand-off`, `dead-lettered`, `standby-took-over`,
 * `durability-timeout`) on a plain `diagnostics_channel` named `x:<package>:<event>`.
 *
 * @example
 * const leaseLost = pointEvent('lock', 'lease-lost');
 * leaseLost.publish(this.name, { fence: handle.fence });
 */
export function pointEvent(pkg: string, event: string): PointEvent {
  const name = `x:${pkg}:${event}`;
  defined.add(name);
  const ch = channel(name);
  return {
    channel: name,
    publish(resource, fields) {
      if (ch.hasSubscribers) ch.publish({ package: pkg, event, resource, ...fields });
    },
  };
}

/** The names of every operation and point-event channel defined in this process so far. */
export function tracingChannels(): string[] {
  return [...defined].sort();
}
