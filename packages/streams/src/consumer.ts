import { randomUUID } from 'node:crypto';
import {
  InvalidArgumentError,
  LeaseKeeper,
  RedisUnavailableError,
  XRedisError,
  waitFor,
  type KeptLease,
  type RedisClientLike,
} from '@x/redis-core';
import { adaptClient, assertClient } from '@x/redis-core';
import { commitCompetingScript, commitStatefulScript } from './commit';
import { failScript } from './dead-letter';
import { StreamCodecError, StreamFencedError } from './errors';
import { assertOneSlot, groupKeys, streamSpace, targetKey, type GroupKeys, type StreamSpace, type StreamTarget } from './keys';
import { acquireScript, leaveScript, releaseScript, renewScript } from './lease';
import { parseRead, type RawMessage, type ReadResult, type StreamMessage } from './message';
import { resolveOptions, type ResolvedOptions, type StreamConsumerOptions } from './options';
import { readCompetingScript, readStatefulScript } from './read';
import { outboxAckScript, outboxReadScript, relayScript } from './outbox';
import { isClusterClient, slotOf } from './slots';
import { traced } from './tracing';
import { Transaction, type CollectedPublish } from './transaction';

/**
 * Where a consumer is in its life: `idle` before `start()`, `standby` while another instance
 * holds the group (stateful mode), `active`, `stopping`, `stopped`.
 *
 * @example
 * if (consumer.status === 'standby') console.log('waiting for the active instance to go');
 */
export type StreamConsumerStatus = 'idle' | 'standby' | 'active' | 'stopping' | 'stopped';

/** The consumer's own connection for blocking reads (a `duplicate()` of the user's client). */
interface BlockingClient {
  connect(): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  xRead(streams: { key: string; id: string }, options: { BLOCK: number; COUNT: number }): Promise<unknown>;
  destroy?(): unknown;
  close?(): unknown;
}

/** One hold on the group: a lease (stateful) or the whole run (competing). */
interface Session {
  epoch: string;
  lost: boolean;
  controller: AbortController;
  kept?: KeptLease;
  /** Stateful: the working state and its last encoding (the rollback point). */
  state: unknown;
  encoded: string;
  /** The outbox may hold staged entries: relay before going on. */
  outboxDirty: boolean;
}

interface Grant {
  epoch: string;
  expiresAt: number;
  sentAt: number;
  state: string | null;
}

interface Failure {
  message: RawMessage;
  error: unknown;
  /** Dead-letter at once: delivered more than maxDeliveries times without a verdict. */
  force: boolean;
}

interface Deferred {
  resolve(): void;
  reject(error: unknown): void;
  settled: boolean;
}

const ERROR_TEXT_LIMIT = 4_096;

/**
 * Processes a Redis stream exactly once: the handler's state, the consumer's position and
 * every message the handler publishes commit together in one fenced script, or not at all.
 *
 * In `stateful` mode one instance per group is active at a time (a lease with an epoch that
 * fences every commit); the others stand by and take over when it stops or crashes. In
 * `competing` mode many instances share the group's messages; a crashed instance's messages
 * are claimed by the others after `claimIdleMs`. A failing message is retried with backoff and
 * moved to the dead-letter stream, with its error, after `maxDeliveries`.
 *
 * @example
 * const consumer = new StreamConsumer(client, {
 *   stream: 'sales',
 *   group: 'inventory-tracker',
 *   initialState: { stock: 100 },
 *   handler: async (message, tx) => {
 *     tx.state.stock -= Number(message.fields.quantity);
 *     if (tx.state.stock <= 10) tx.publish('restock-alerts', { sku: message.fields.sku! });
 *   },
 *   maxDeliveries: 5,
 * });
 * await consumer.start();
 * // ...
 * await consumer.stop();
 */
export class StreamConsumer<S = null> {
  readonly #client: RedisClientLike;
  readonly #o: ResolvedOptions<S>;
  readonly #space: StreamSpace;
  readonly #keys: GroupKeys;
  readonly #cluster: boolean;
  readonly #sourceSlot: number;
  readonly #token = randomUUID();
  readonly #stop = new AbortController();
  #status: StreamConsumerStatus = 'idle';
  #ready: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #committed: string | undefined;
  #blocking: Promise<BlockingClient> | undefined;
  #blockingClient: BlockingClient | undefined;
  #blockingInFlight = false;
  #seq = 0;
  #claimCursor = '0-0';
  #nextClaimAt = 0;

  /**
   * Checks every option (throws `InvalidArgumentError` before anything is sent); nothing
   * happens until {@link StreamConsumer.start}.
   */
  constructor(client: RedisClientLike, options: StreamConsumerOptions<S>) {
    assertClient(client);
    this.#client = client;
    this.#o = resolveOptions(options);
    this.#space = streamSpace(this.#o.prefix, this.#o.space);
    this.#keys = groupKeys(this.#o.prefix, this.#o.space, this.#o.stream, this.#o.group, this.#o.deadLetterStream);
    if (this.#keys.dead === this.#keys.stream) throw new InvalidArgumentError('deadLetterStream must differ from stream');
    this.#cluster = isClusterClient(client);
    this.#sourceSlot = slotOf(this.#keys.stream);
  }

  /** Turns a publish target into its key; on a Cluster, refuses one outside the source's slot (unless staged). */
  readonly #resolveTarget = (target: StreamTarget): string => {
    // With the outbox, a stream of another space is fine too (relayed when in another slot).
    const other = this.#o.outbox && typeof target === 'object' && target !== null && 'space' in target && typeof target.space === 'string';
    const key = targetKey(other ? streamSpace(this.#o.prefix, target.space) : this.#space, target);
    if (this.#cluster && !this.#o.outbox && slotOf(key) !== this.#sourceSlot) assertOneSlot('tx.publish', this.#keys.stream, [key]);
    return key;
  };

  /** Cross-slot publishes go through the outbox (a Cluster, and `outbox: true`). */
  get #staging(): boolean {
    return this.#cluster && this.#o.outbox;
  }

  /**
   * Moves every staged entry of the outbox to its target, in order, then deletes it from the
   * outbox; reads and deletes are fenced like commits, and each target's marker makes a write
   * that already happened (a crash before the delete, a zombie relay) a no-op.
   */
  async #relay(session: Session): Promise<void> {
    const mode = this.#o.mode === 'stateful' ? 's' : 'c';
    const keys = [this.#keys.group, this.#keys.outbox];
    for (;;) {
      const r = (await this.#retrying(session, () => outboxReadScript.run(this.#client, keys, [mode, this.#token, session.epoch, 100]))) as unknown[];
      if (r.length === 0) break;
      const ids: string[] = [];
      for (let i = 0; i + 2 < r.length; i += 3) {
        const id = String(r[i]);
        const target = String(r[i + 1]);
        const fields = JSON.parse(String(r[i + 2])) as string[];
        if (target !== '' && fields.length >= 2) {
          await this.#retrying(session, () => relayScript.run(this.#client, [target, this.#keys.relayMarker(target)], [id, ...fields]));
        }
        ids.push(id);
      }
      await this.#retrying(session, () => outboxAckScript.run(this.#client, keys, [mode, this.#token, session.epoch, ...ids]));
    }
    session.outboxDirty = false;
  }

  /** `idle` before start, `standby` while another instance holds the group, `active`, `stopping`, `stopped`. */
  get status(): StreamConsumerStatus {
    return this.#status;
  }

  /** Stateful mode: the state as of this instance's last commit (or load); undefined before that. */
  get state(): S | undefined {
    return this.#committed === undefined ? undefined : this.#o.codec.decode(this.#committed);
  }

  /**
   * Joins the group (creating it at the beginning of the stream when new) and starts
   * processing in the background. Resolves once the first attempt is done: the instance is
   * `active`, or (stateful mode) `standby` behind another instance. Rejects when that first
   * attempt fails (`StreamModeConflictError`, a stored state the codec cannot decode, Redis
   * unreachable). Calling it again returns the same promise.
   *
   * @example
   * await consumer.start();
   * console.log(consumer.status); // 'active' or 'standby'
   */
  start(): Promise<void> {
    if (this.#status === 'stopping' || this.#status === 'stopped') {
      return Promise.reject(new InvalidArgumentError('a stopped consumer cannot start again: create a new one'));
    }
    if (!this.#ready) {
      if (this.#cluster) {
        try {
          assertOneSlot(`group ${JSON.stringify(this.#o.group)}`, this.#keys.stream, [this.#keys.group, this.#keys.dead]);
        } catch (error) {
          this.#status = 'stopped';
          this.#ready = Promise.reject(error);
          return this.#ready;
        }
      }
      let deferred!: Deferred;
      this.#ready = new Promise<void>((resolve, reject) => {
        deferred = {
          settled: false,
          resolve: () => {
            if (!deferred.settled) (deferred.settled = true), resolve();
          },
          reject: (error) => {
            if (!deferred.settled) (deferred.settled = true), reject(error);
          },
        };
      });
      this.#loop = this.#run(deferred);
    }
    return this.#ready;
  }

  /**
   * Stops: the message in hand finishes and commits (or rolls back), messages read but not
   * handled are handed back, the lease is given back (a standby takes over at once), and the
   * consumer's connection is closed. Resolves when all of that is done.
   *
   * @example
   * process.on('SIGTERM', () => void consumer.stop());
   */
  async stop(): Promise<void> {
    if (this.#status === 'idle') {
      this.#status = 'stopped';
      return;
    }
    if (this.#status !== 'stopped') {
      this.#status = 'stopping';
      this.#stop.abort(new Error('consumer stopped'));
      this.#interruptBlocking();
    }
    await this.#loop;
  }

  /** `await using consumer = ...` stops it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  get #stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  async #run(ready: Deferred): Promise<void> {
    try {
      if (this.#o.mode === 'stateful') await this.#runStateful(ready);
      else await this.#runCompeting(ready);
      ready.resolve();
    } catch (error) {
      if (ready.settled) this.#report(error);
      ready.reject(error);
    } finally {
      this.#status = 'stopped';
      this.#closeBlocking();
    }
  }

  // ---- stateful mode -------------------------------------------------------------------------

  async #runStateful(ready: Deferred): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      let grant: Grant;
      try {
        grant = await this.#acquire(ready);
      } catch (error) {
        if (this.#stopping) return;
        if (!ready.settled || isFatal(error)) throw error;
        this.#report(error);
        await this.#pause(backoffMs(++failures));
        continue;
      }
      if (this.#status === 'standby') traced.standbyTookOver.publish(this.#keys.name, { group: this.#o.group, consumer: this.#o.consumerName });
      const clean = await this.#holdLease(grant, ready);
      failures = clean ? 0 : failures + 1;
      if (!clean && !this.#stopping) await this.#pause(backoffMs(failures));
    }
  }

  /** Waits (without polling) until this instance holds the group's lease. */
  #acquire(ready: Deferred): Promise<Grant> {
    return waitFor<Grant>({
      client: this.#client,
      channel: this.#keys.channel,
      target: this.#keys.target,
      timeoutMs: Infinity,
      signal: this.#stop.signal,
      timeoutError: () => new Error('unreachable: the wait has no timeout'),
      attempt: async () => {
        const sentAt = performance.now();
        const reply = (await acquireScript.run(this.#client, [this.#keys.group, this.#keys.stream], [
          this.#token,
          this.#o.leaseMs,
          this.#o.group,
          'stateful',
        ])) as unknown[];
        if (reply[0] === 1) {
          return {
            done: {
              epoch: String(reply[1]),
              expiresAt: Number(reply[2]),
              sentAt,
              state: reply[3] === null || reply[3] === undefined ? null : String(reply[3]),
            },
          };
        }
        this.#status = 'standby';
        ready.resolve();
        // Re-check when the holder's lease runs out at the latest: a lost wake-up only delays.
        return { retryInMs: Number(reply[1]) + 5 };
      },
    });
  }

  /** Processes while the lease holds. Returns false when it ended on an unexpected error. */
  async #holdLease(grant: Grant, ready: Deferred): Promise<boolean> {
    const o = this.#o;
    const session: Session = { epoch: grant.epoch, lost: false, controller: new AbortController(), state: undefined, encoded: '', outboxDirty: this.#staging };
    let inbox: RawMessage[] = [];
    let release = true;
    let clean = true;
    try {
      session.encoded = grant.state ?? o.initialEncoded;
      try {
        session.state = o.codec.decode(session.encoded);
      } catch (error) {
        throw new StreamCodecError(`the stored state of group ${o.group} cannot be decoded`, { cause: error });
      }
      this.#committed = session.encoded;
      ready.resolve();
      session.kept = LeaseKeeper.for(this.#client).keep({
        ttlMs: o.leaseMs,
        sentAt: grant.sentAt,
        renew: async () => {
          const expires = Number(await renewScript.run(this.#client, [this.#keys.group], [this.#token, session.epoch, o.leaseMs]));
          return expires < 0 ? null : expires;
        },
        onLost: (why) => {
          traced.leaseLost.publish(this.#keys.name, { group: o.group, detail: why });
          session.lost = true;
          session.controller.abort(new StreamFencedError(`the lease of group ${o.group} was lost (${why})`));
          this.#interruptBlocking();
        },
      });
      if (!this.#stopping) this.#status = 'active';
      // Resume a relay that a crashed or stopped processor left unfinished.
      if (session.outboxDirty) await this.#relay(session);
      let blockAfter: string | undefined;
      while (!this.#stopping && !session.lost) {
        if (blockAfter !== undefined) {
          await this.#waitForEntries(blockAfter, o.blockMs, session);
          blockAfter = undefined;
          continue;
        }
        if (inbox.length === 0) {
          const reply = (await this.#retrying(session, () =>
            readStatefulScript.run(this.#client, [this.#keys.group, this.#keys.stream], [
              this.#token,
              session.epoch,
              o.group,
              o.consumerName,
              o.batchSize,
            ]),
          )) as unknown[];
          const read = parseRead(reply, 0);
          if (read.messages.length === 0) {
            blockAfter = read.lastId;
            continue;
          }
          inbox = read.messages;
        }
        ({ inbox, blockAfter } = await this.#processBatch(session, inbox));
      }
    } catch (error) {
      if (isFatal(error)) {
        // Retrying cannot cure it (a state the codec cannot read, a key of the wrong type):
        // stop, and leave the group to an instance that can work with it.
        session.kept?.stop();
        await this.#release(session, inbox).catch(() => undefined);
        throw error;
      }
      if (isFenced(error)) release = false;
      else clean = false;
      this.#report(error);
    } finally {
      session.kept?.stop();
      session.controller.abort(new StreamFencedError('this instance no longer holds the group'));
      if (this.#status === 'active') this.#status = 'standby';
    }
    if (release) await this.#release(session, inbox).catch((error: unknown) => this.#report(error));
    return clean;
  }

  async #release(session: Session, unhandled: RawMessage[]): Promise<void> {
    await releaseScript.run(this.#client, [this.#keys.group, this.#keys.stream], [
      this.#token,
      session.epoch,
      this.#keys.channel,
      this.#keys.target,
      this.#o.group,
      this.#o.consumerName,
      ...unhandled.map((m) => m.id),
    ]);
  }

  // ---- competing mode ------------------------------------------------------------------------

  async #runCompeting(ready: Deferred): Promise<void> {
    const o = this.#o;
    await acquireScript.run(this.#client, [this.#keys.group, this.#keys.stream], [this.#token, o.leaseMs, o.group, 'competing']);
    this.#status = 'active';
    ready.resolve();
    const session: Session = { epoch: '', lost: false, controller: new AbortController(), state: undefined, encoded: '', outboxDirty: this.#staging };
    let inbox: RawMessage[] = [];
    let blockAfter: string | undefined;
    let failures = 0;
    try {
      while (!this.#stopping) {
        try {
          if (session.outboxDirty) await this.#relay(session);
          if (blockAfter !== undefined) {
            await this.#waitForEntries(blockAfter, Math.min(o.blockMs, Math.max(1, this.#nextClaimAt - performance.now())), session);
            blockAfter = undefined;
            continue;
          }
          if (inbox.length === 0) {
            const claimIdle = this.#claimDue();
            const reply = (await this.#retrying(session, () =>
              readCompetingScript.run(this.#client, [this.#keys.group, this.#keys.stream], [
                o.group,
                o.consumerName,
                o.batchSize,
                claimIdle,
                this.#claimCursor,
                Math.max(10 * o.claimIdleMs, 60_000),
              ]),
            )) as unknown[];
            const read = parseRead(reply, 0);
            this.#claimed(read, claimIdle);
            if (read.messages.length === 0) {
              blockAfter = read.lastId;
              continue;
            }
            inbox = read.messages;
          }
          ({ inbox, blockAfter } = await this.#processBatch(session, inbox));
          failures = 0;
        } catch (error) {
          if (isFatal(error)) throw error;
          this.#report(error);
          // What was in hand stays pending for this consumer and is read again (or claimed).
          inbox = [];
          await this.#pause(backoffMs(++failures));
        }
      }
    } finally {
      await leaveScript
        .run(this.#client, [this.#keys.group, this.#keys.stream], [o.group, o.consumerName, o.claimIdleMs, ...inbox.map((m) => m.id)])
        .catch((error: unknown) => this.#report(error));
    }
  }

  /** The claimIdleMs to pass to a read when a claim pass is due, else 0. */
  #claimDue(): number {
    return performance.now() >= this.#nextClaimAt ? this.#o.claimIdleMs : 0;
  }

  #claimed(read: ReadResult, claimIdle: number): void {
    if (claimIdle === 0 || read.cursor === '') return;
    this.#claimCursor = read.cursor;
    // A pass that went round the whole pending list rests; one cut short by COUNT goes on.
    if (read.cursor === '0-0') this.#nextClaimAt = performance.now() + Math.max(1, Math.floor(this.#o.claimIdleMs / 2));
  }

  // ---- both modes ----------------------------------------------------------------------------

  /**
   * Runs the handler over the messages in hand until one fails (or stop / lease loss), commits
   * the handled ones in one script (which also reads the next batch when the hand is empty),
   * then records the failure (retry with backoff, or dead letter).
   */
  async #processBatch(session: Session, inbox: RawMessage[]): Promise<{ inbox: RawMessage[]; blockAfter: string | undefined }> {
    const o = this.#o;
    const stateful = o.mode === 'stateful';
    const done: string[] = [];
    const publishes: Array<CollectedPublish & { owner: number }> = [];
    let encoded = session.encoded;
    let failure: Failure | undefined;
    while (inbox.length > 0 && !this.#stopping && !session.lost) {
      const raw = inbox[0]!;
      if (raw.fields === null) {
        // Deleted from the stream after it was delivered: acknowledge it, nothing to handle.
        done.push(raw.id);
        inbox.shift();
        continue;
      }
      if (raw.deliveries > o.maxDeliveries) {
        const error = new Error(
          `delivered ${raw.deliveries - 1} times without a verdict: the consumer stopped or crashed while handling it`,
        );
        failure = { message: raw, error, force: true };
        break;
      }
      const message: StreamMessage = { id: raw.id, stream: this.#keys.name, fields: raw.fields, deliveries: raw.deliveries };
      const tx = new Transaction<S>(session.state as S, this.#resolveTarget, session.controller.signal);
      try {
        const result = o.handler(message, tx);
        if (result && typeof (result as Promise<void>).then === 'function') await result;
        tx.close();
        if (stateful) encoded = this.#encode(tx.state);
      } catch (error) {
        tx.close();
        // Roll back: the state as it was before this message.
        if (stateful) session.state = o.codec.decode(encoded);
        failure = { message: raw, error, force: false };
        break;
      }
      session.state = tx.state;
      done.push(raw.id);
      for (const publish of tx.publishes) publishes.push({ ...publish, owner: done.length });
      inbox.shift();
    }
    let blockAfter: string | undefined;
    if (done.length > 0) {
      const readCount = inbox.length === 0 && !failure && !this.#stopping && !session.lost ? o.batchSize : 0;
      const next = await this.#commit(session, done, publishes, encoded, readCount);
      if (session.outboxDirty) await this.#relay(session);
      if (stateful) {
        session.encoded = encoded;
        this.#committed = encoded;
      }
      if (next) {
        if (next.messages.length > 0) inbox = next.messages;
        else blockAfter = next.lastId;
      }
    }
    if (failure) inbox = await this.#fail(session, failure, inbox);
    return { inbox, blockAfter };
  }

  #encode(state: unknown): string {
    let text: unknown;
    try {
      text = this.#o.codec.encode(state as S);
    } catch (error) {
      throw new StreamCodecError('codec.encode failed', { cause: error });
    }
    if (typeof text !== 'string') throw new StreamCodecError('codec.encode must return a string');
    return text;
  }

  #commit(
    session: Session,
    ids: string[],
    publishes: Array<CollectedPublish & { owner: number }>,
    encoded: string,
    readCount: number,
  ): Promise<ReadResult | undefined> {
    const o = this.#o;
    const fields = { group: o.group, mode: o.mode, script: `streams.commit-${o.mode}`, messages: ids.length, published: publishes.length };
    return traced.commit.trace(this.#keys.name, () => this.#commitBatch(session, ids, publishes, encoded, readCount), fields);
  }

  async #commitBatch(
    session: Session,
    ids: string[],
    publishes: Array<CollectedPublish & { owner: number }>,
    encoded: string,
    readCount: number,
  ): Promise<ReadResult | undefined> {
    const o = this.#o;
    const keys = [this.#keys.group, this.#keys.stream];
    const index = new Map<string, number>();
    const pubArgs: Array<string | number> = [publishes.length];
    const perMessage = new Map<number, number>();
    for (const original of publishes) {
      let p = original;
      if (this.#staging && slotOf(p.key) !== this.#sourceSlot) {
        // Another slot: staged in the outbox (this slot), relayed once this commit is in.
        const n = (perMessage.get(p.owner) ?? 0) + 1;
        perMessage.set(p.owner, n);
        const flat = ['target', p.key, 'fields', JSON.stringify(p.flat), 'source-id', ids[p.owner - 1]!, 'index', String(n)];
        p = { key: this.#keys.outbox, flat, owner: p.owner };
        session.outboxDirty = true;
      }
      let k = index.get(p.key);
      if (k === undefined) {
        keys.push(p.key);
        k = keys.length;
        index.set(p.key, k);
      }
      if (o.mode === 'competing') pubArgs.push(p.owner);
      pubArgs.push(k, p.flat.length, ...p.flat);
    }
    if (o.mode === 'stateful') {
      const script = commitStatefulScript(keys.length - 2);
      const args = [this.#token, session.epoch, o.group, o.consumerName, o.leaseMs, readCount, 1, encoded, o.trimSource ? 1 : 0, ...o.outputTrim, ids.length, ...ids, ...pubArgs];
      let sentAt = 0;
      const reply = (await this.#retrying(session, () => {
        sentAt = performance.now();
        return script.run(this.#client, keys, args);
      })) as unknown[];
      session.kept?.extended(sentAt, o.leaseMs);
      return readCount > 0 ? parseRead(reply, 2) : undefined;
    }
    const claimIdle = readCount > 0 ? this.#claimDue() : 0;
    // Unique per instance: two instances that (wrongly) share a consumer name never take each
    // other's commit for a resend.
    const seq = `${this.#token}.${++this.#seq}`;
    const script = commitCompetingScript(keys.length - 2);
    const args = [o.group, o.consumerName, seq, readCount, claimIdle, this.#claimCursor, o.trimSource ? 1 : 0, ...o.outputTrim, ids.length, ...ids, ...pubArgs];
    const reply = (await this.#retrying(session, () => script.run(this.#client, keys, args))) as unknown[];
    const lost = String(reply[1] ?? '');
    if (lost !== '') {
      for (const id of lost.split(',')) {
        this.#report(new StreamFencedError(`message ${id} was claimed by another consumer before this one committed it; its effects were not applied here`));
      }
    }
    if (readCount === 0) return undefined;
    const read = parseRead(reply, 2);
    this.#claimed(read, claimIdle);
    return read;
  }

  /** Records a failed delivery: retry (after a backoff) or dead-letter. Returns the new hand. */
  async #fail(session: Session, failure: Failure, inbox: RawMessage[]): Promise<RawMessage[]> {
    const o = this.#o;
    const { message, error, force } = failure;
    if (!force) this.#report(error, { id: message.id, stream: this.#keys.name, fields: message.fields ?? {}, deliveries: message.deliveries });
    let reply: unknown[];
    try {
      reply = (await this.#retrying(session, () =>
        failScript.run(this.#client, [this.#keys.group, this.#keys.stream, this.#keys.dead], [
          o.mode === 'stateful' ? 's' : 'c',
          this.#token,
          session.epoch,
          o.group,
          o.consumerName,
          message.id,
          describe(error),
          o.maxDeliveries,
          this.#keys.name,
          force ? 1 : 0,
          ...o.deadLetterTrim,
        ]),
      )) as unknown[];
    } catch (e) {
      // Competing: the message was claimed by another consumer; it is theirs now.
      if (o.mode === 'competing' && isFenced(e)) {
        this.#report(e);
        return inbox.slice(1);
      }
      throw e;
    }
    if (reply[0] === 'dead') {
      traced.deadLettered.publish(this.#keys.name, { group: o.group, id: message.id, deliveries: message.deliveries, error: describe(error) });
      return inbox.slice(1);
    }
    message.deliveries = Number(reply[2]);
    const attempt = message.deliveries - 1;
    const delay = Math.min(o.maxRetryDelayMs, o.retryDelayMs * 2 ** Math.min(30, attempt - 1));
    await this.#pause(delay * (0.5 + Math.random() / 2), session.controller.signal);
    return inbox;
  }

  /**
   * Runs a script call, resending it on a connection error (every script here is safe to
   * resend) until it answers, the lease is lost, or (competing) claimIdleMs has passed.
   */
  async #retrying(session: Session, op: () => Promise<unknown>): Promise<unknown> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        // A transient fault (RedisUnavailableError) is resent; a refusal or a server reply is not.
        if ((XRedisError.isInstance(error) && !RedisUnavailableError.isInstance(error)) || isServerReply(error)) throw error;
        if (session.lost) throw error;
        if (this.#o.mode === 'competing' && performance.now() - started > this.#o.claimIdleMs) throw error;
        if (this.#o.mode === 'competing' && this.#stopping && attempt >= 3) throw error;
        await delay(Math.min(1_000, 20 * 2 ** attempt));
      }
    }
  }

  /** Blocks on the consumer's own connection until an entry after `lastId` exists (or maxMs). */
  async #waitForEntries(lastId: string, maxMs: number, session: Session): Promise<void> {
    if (this.#stopping || session.lost) return;
    let client: BlockingClient;
    try {
      client = await this.#blockingConnection();
    } catch (error) {
      this.#report(error);
      await this.#pause(Math.min(1_000, maxMs), session.controller.signal);
      return;
    }
    if (this.#stopping || session.lost) return;
    this.#blockingInFlight = true;
    try {
      await client.xRead({ key: this.#keys.stream, id: lastId }, { BLOCK: Math.max(1, Math.floor(maxMs)), COUNT: 1 });
    } catch (error) {
      if (this.#stopping || session.lost) return;
      this.#report(error);
      this.#closeBlocking();
      await this.#pause(Math.min(1_000, maxMs), session.controller.signal);
    } finally {
      this.#blockingInFlight = false;
    }
  }

  #blockingConnection(): Promise<BlockingClient> {
    if (!this.#blocking) {
      // A blocking read on the user's client would stall every command queued behind it.
      const client = adaptClient(this.#client).duplicate() as BlockingClient;
      client.on('error', () => undefined);
      this.#blockingClient = client;
      this.#blocking = client.connect().then(
        () => client,
        (error: unknown) => {
          if (this.#blockingClient === client) {
            this.#blocking = undefined;
            this.#blockingClient = undefined;
          }
          throw error;
        },
      );
    }
    return this.#blocking;
  }

  /** Cuts a blocking read short (stop, lease lost): the only way is to drop its connection. */
  #interruptBlocking(): void {
    if (this.#blockingInFlight) this.#closeBlocking();
  }

  #closeBlocking(): void {
    const client = this.#blockingClient;
    this.#blocking = undefined;
    this.#blockingClient = undefined;
    if (!client) return;
    try {
      if (typeof client.destroy === 'function') client.destroy();
      else void Promise.resolve(client.close?.()).catch(() => undefined);
    } catch {
      // Already closed.
    }
  }

  /** Sleeps `ms`, cut short by stop (and by `signal`). */
  #pause(ms: number, signal?: AbortSignal): Promise<void> {
    const signals = signal ? [this.#stop.signal, signal] : [this.#stop.signal];
    if (signals.some((s) => s.aborted)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      for (const s of signals) s.addEventListener('abort', done, { once: true });
    });
  }

  #report(error: unknown, message?: StreamMessage): void {
    try {
      this.#o.onError?.(error, message);
    } catch {
      // onError must not break the consumer.
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function backoffMs(failures: number): number {
  return Math.min(5_000, 50 * 2 ** Math.min(10, failures)) * (0.5 + Math.random() / 2);
}

function isFenced(error: unknown): boolean {
  return XRedisError.isInstance(error) && error.code === 'STREAM_FENCED';
}

/** Errors that retrying cannot cure: stop the consumer and tell the caller. */
function isFatal(error: unknown): boolean {
  return (
    XRedisError.isInstance(error) &&
    ['STREAM_MODE_CONFLICT', 'INVALID_ARGUMENT', 'STREAM_WRONGTYPE', 'STREAM_CODEC'].includes(error.code)
  );
}

/** A reply from the server (it ran, and said no): resending gets the same answer. */
function isServerReply(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return /^[A-Z][A-Z_]+ /.test(error.message) || /ErrorReply|SimpleError|BlobError/.test(error.constructor.name);
}

function describe(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = `${error.name}: ${error.message}`;
  else {
    try {
      text = typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
    } catch {
      text = String(error);
    }
  }
  return text.length > ERROR_TEXT_LIMIT ? `${text.slice(0, ERROR_TEXT_LIMIT)}…` : text;
}
