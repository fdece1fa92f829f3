import type { RedisClientLike, SubscriberLike } from './client';
import { adaptClient, onCloseResources, type AdaptedClient } from './clients';

/**
 * A wake-up message handler. `message` is what the script published after the target, or `null`
 * when a message may have been missed (the subscriber reconnected): re-check then.
 */
export type WakeListener = (message: string | null) => void;

/** Messages addressed to every listener of a channel start with this target. */
export const BROADCAST = '*';

interface ChannelEntry {
  /** Listeners by target (a waiter's token, or BROADCAST for those that take every message). */
  byTarget: Map<string, Set<WakeListener>>;
  size: number;
  ready: Promise<void>;
  /** Pending unsubscribe of a channel nobody listens to any more. */
  linger?: NodeJS.Timeout | undefined;
  /** The subscription is active. */
  subscribed?: boolean;
}

/**
 * How long a channel stays subscribed after its last listener left: a process that waits on the
 * same resource again and again (a contended lock, a blocking queue consumer) subscribes once.
 */
const LINGER_MS = 10_000;

/** How long after a cluster node connection became ready its listeners re-check. */
const RECHECK_AFTER_READY_MS = 50;

const buses = new WeakMap<object, WakeBus>();

/**
 * One subscriber connection per client per process (per shard on a cluster), shared by every
 * waiter of every primitive.
 *
 * Scripts publish `"<target> <payload>"` on a resource's channel; the bus hands the payload to the
 * listeners registered for that target (a waiter's token) and to those registered for
 * `BROADCAST`, so a grant addressed to one of 10,000 waiters costs one map lookup. A message
 * whose target is `BROADCAST` reaches every listener of the channel. Channels are
 * subscribed while they have listeners (SSUBSCRIBE where the server has it, SUBSCRIBE
 * elsewhere), and for a few seconds after the last listener left. After a reconnect every
 * listener is called with `null`, because messages sent while the connection was down are lost.
 *
 * @example
 * const bus = WakeBus.for(client);
 * const stop = await bus.listen(ks.channel, token, (payload) => onGrant(payload));
 * ...
 * await stop();
 */
export class WakeBus {
  readonly #client: AdaptedClient;
  #subscriber: Promise<SubscriberLike> | undefined;
  #sharded: boolean | undefined;
  readonly #channels = new Map<string, ChannelEntry>();
  #connectedOnce = false;
  #ownsSubscriber = true;
  #detach: (() => void) | undefined;
  /** node-redis passes one info object per node connection: seen once, a later ready is a reconnect. */
  readonly #readyNodes = new WeakSet<object>();
  readonly #onNodeReady = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    if (!this.#readyNodes.has(node)) {
      this.#readyNodes.add(node);
      return;
    }
    setTimeout(() => this.#recheckAll(), RECHECK_AFTER_READY_MS).unref();
  };

  private constructor(client: AdaptedClient) {
    this.#client = client;
  }

  /** The bus of `client` in this process (created on first use). */
  static for(client: RedisClientLike): WakeBus {
    let bus = buses.get(client);
    if (!bus) {
      bus = new WakeBus(adaptClient(client));
      buses.set(client, bus);
      onCloseResources(client, () => WakeBus.close(client));
    }
    return bus;
  }

  /** Number of listeners registered (for tests and diagnostics). */
  get listenerCount(): number {
    let n = 0;
    for (const entry of this.#channels.values()) n += entry.size;
    return n;
  }

  /** Whether `channel` is subscribed now (it has listeners, or lingers after its last one left). */
  isSubscribed(channel: string): boolean {
    return this.#channels.get(channel)?.subscribed === true;
  }

  /**
   * Calls `listener` with the payload of every message on `channel` addressed to `target` (and
   * with `null` after a reconnect). Resolves once the subscription is active, so a script run
   * after it cannot publish unseen. The returned function removes the listener.
   */
  async listen(channel: string, target: string, listener: WakeListener): Promise<() => Promise<void>> {
    let entry = this.#channels.get(channel);
    if (!entry) {
      const created: ChannelEntry = { byTarget: new Map(), size: 0, ready: Promise.resolve() };
      created.ready = this.#subscribe(channel).then(
        () => {
          created.subscribed = true;
        },
        (error: unknown) => {
          if (this.#channels.get(channel) === created) this.#channels.delete(channel);
          throw error;
        },
      );
      this.#channels.set(channel, created);
      entry = created;
    }
    if (entry.linger) {
      clearTimeout(entry.linger);
      entry.linger = undefined;
    }
    let set = entry.byTarget.get(target);
    if (!set) entry.byTarget.set(target, (set = new Set()));
    set.add(listener);
    entry.size += 1;
    const owner = entry;
    let removed = false;
    const remove = async (): Promise<void> => {
      if (removed) return;
      removed = true;
      const targetSet = owner.byTarget.get(target);
      targetSet?.delete(listener);
      if (targetSet?.size === 0) owner.byTarget.delete(target);
      owner.size -= 1;
      if (owner.size === 0 && this.#channels.get(channel) === owner) {
        owner.linger = setTimeout(() => {
          if (owner.size !== 0 || this.#channels.get(channel) !== owner) return;
          this.#channels.delete(channel);
          void owner.ready.then(() => this.#unsubscribe(channel)).catch(() => undefined);
        }, LINGER_MS);
        owner.linger.unref();
      }
    };
    try {
      await entry.ready;
    } catch (error) {
      await remove();
      throw error;
    }
    return remove;
  }

  readonly #dispatch = (message: string, channel: string): void => {
    const entry = this.#channels.get(channel);
    if (!entry) return;
    const space = message.indexOf(' ');
    const target = space < 0 ? message : message.slice(0, space);
    const payload = space < 0 ? '' : message.slice(space + 1);
    // A broadcast reaches every listener; an addressed message its target and those listening
    // to everything on the channel.
    const sets = target === BROADCAST ? [...entry.byTarget.values()] : [entry.byTarget.get(target), entry.byTarget.get(BROADCAST)];
    for (const set of sets) if (set) for (const listener of [...set]) safely(listener, payload);
  };

  #connect(): Promise<SubscriberLike> {
    if (!this.#subscriber) {
      const plan = this.#client.subscriber();
      if (plan.shared) {
        // A node-redis cluster keeps its sharded pub/sub on connections of their own (one per
        // shard), apart from its command connections, and a sentinel one that follows the master:
        // subscribing through them costs no duplicate. A cluster resubscribes on its own after a
        // reconnect and reports the connection ready again; then listeners re-check a little
        // later, since a message sent while a shard was away is lost.
        this.#ownsSubscriber = false;
        this.#sharded = plan.sharded;
        const shared = plan.connection;
        if (this.#client.kind === 'node-redis-cluster') {
          shared.on('node-ready', this.#onNodeReady);
          this.#detach = () => shared.off?.('node-ready', this.#onNodeReady);
        }
        this.#subscriber = Promise.resolve(shared);
        return this.#subscriber;
      }
      if (plan.sharded !== undefined) this.#sharded = plan.sharded;
      const sub = plan.connection;
      // Errors on our own connection are ours to absorb: node-redis reconnects by itself, and a
      // waiter re-checks on its timer meanwhile.
      sub.on('error', () => undefined);
      sub.on('ready', () => {
        if (this.#connectedOnce) this.#recheckAll();
        this.#connectedOnce = true;
      });
      this.#subscriber = sub.connect().then(
        () => {
          // The subscriber never keeps a process alive: a waiter's own timers do while it waits.
          sub.unref?.();
          return sub;
        },
        (error: unknown) => {
          this.#subscriber = undefined;
          throw error;
        },
      );
    }
    return this.#subscriber;
  }

  async #subscribe(channel: string): Promise<void> {
    const sub = await this.#connect();
    if (this.#sharded !== false && typeof sub.sSubscribe === 'function') {
      try {
        await sub.sSubscribe(channel, this.#dispatch);
        this.#sharded = true;
        return;
      } catch (error) {
        if (!/unknown command/i.test(String((error as Error)?.message))) throw error;
        this.#sharded = false;
      }
    }
    await sub.subscribe(channel, this.#dispatch);
  }

  async #unsubscribe(channel: string, subscriber?: SubscriberLike): Promise<void> {
    const sub = subscriber ?? (await this.#connect());
    if (this.#sharded && sub.sUnsubscribe) await sub.sUnsubscribe(channel, this.#dispatch);
    else await sub.unsubscribe(channel, this.#dispatch);
  }

  #recheckAll(): void {
    for (const entry of this.#channels.values()) {
      for (const set of entry.byTarget.values()) for (const listener of [...set]) safely(listener, null);
    }
  }

  /** Closes the subscriber connection of `client`'s bus, if one was opened. */
  static async close(client: RedisClientLike): Promise<void> {
    const bus = buses.get(client);
    if (!bus) return;
    buses.delete(client);
    const pending = bus.#subscriber;
    bus.#subscriber = undefined;
    const channels = [...bus.#channels.keys()];
    for (const entry of bus.#channels.values()) clearTimeout(entry.linger);
    bus.#channels.clear();
    if (!pending) return;
    const sub = await pending.catch(() => undefined);
    if (!sub) return;
    bus.#detach?.();
    if (!bus.#ownsSubscriber) {
      for (const channel of channels) await bus.#unsubscribe(channel, sub).catch(() => undefined);
      return;
    }
    if (typeof sub.destroy === 'function') sub.destroy();
    else await sub.close?.();
  }
}

function safely(listener: WakeListener, payload: string | null): void {
  try {
    listener(payload);
  } catch {
    // A listener's failure belongs to its waiter, never to the subscriber connection.
  }
}
