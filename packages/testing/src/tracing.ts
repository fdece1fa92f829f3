import { channel, tracingChannel } from 'node:diagnostics_channel';

/** One message a recorder saw: the channel's name and the context (or event) object. */
export interface Recorded {
  channel: string;
  context: Record<string, unknown>;
}

/** What {@link recordChannels} returns. */
export interface ChannelRecorder {
  /** Operations as they ended (`asyncEnd`: after a success and after a failure), in order. */
  readonly ended: Recorded[];
  /** Point events as they were published, in order. */
  readonly events: Recorded[];
  /** Unsubscribes from every channel. */
  stop(): void;
}

const noop = (): void => undefined;

/**
 * Subscribes to the given operation tracing channels (`x:<package>:<operation>`) and point-event
 * channels (`x:<package>:<event>`) of the @x packages and records what they publish, for a
 * package's subscriber test.
 *
 * @example
 * const rec = recordChannels({ operations: ['x:lock:acquire'], events: ['x:lock:hand-off'] });
 * try { await lock.acquire(); } finally { rec.stop(); }
 * expect(rec.ended[0]!.context).toMatchObject({ resource: 'jobs', outcome: 'granted' });
 */
export function recordChannels(names: { operations?: readonly string[]; events?: readonly string[] }): ChannelRecorder {
  const ended: Recorded[] = [];
  const events: Recorded[] = [];
  const offs: Array<() => void> = [];
  for (const name of names.operations ?? []) {
    const ch = tracingChannel<unknown, Record<string, unknown>>(name);
    const handlers = {
      start: noop,
      end: noop,
      asyncStart: noop,
      error: noop,
      asyncEnd: (context: Record<string, unknown>) => void ended.push({ channel: name, context }),
    };
    ch.subscribe(handlers);
    offs.push(() => ch.unsubscribe(handlers));
  }
  for (const name of names.events ?? []) {
    const listener = (message: unknown) => void events.push({ channel: name, context: message as Record<string, unknown> });
    channel(name).subscribe(listener);
    offs.push(() => channel(name).unsubscribe(listener));
  }
  return { ended, events, stop: () => offs.forEach((off) => off()) };
}
