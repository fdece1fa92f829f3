import { InvalidArgumentError, assertClient, assertInteger, assertName, defineScript, type RedisClientLike } from '@x/redis-core';
import { jsonCodec, type StateCodec } from './codec';
import { StreamCodecError } from './errors';
import { DEFAULT_PREFIX, DEFAULT_SPACE, assertKey, assertOneSlot, groupKeys, isStreamKey, type GroupKeys, type StreamKey } from './keys';
import { ERRORS, STREAM_LUA } from './lua';
import type { StreamFields } from './message';
import type { StreamMode } from './options';
import { isClusterClient } from './slots';

/**
 * What a group holds, read in one script without starting a consumer.
 *
 * KEYS: group hash, source stream, dead-letter stream
 * ARGV: group
 * Reply: mode, hasState (1|0), state, position, leaseExpiresAt (0: none), epoch, length,
 *        groupExists (1|0), pending, lag (-1: unknown), lastDeliveredId, entriesRead (-1), consumers,
 *        deadLetters
 */
const infoScript = defineScript({
  name: 'streams.info',
  keys: ['group', 'stream', 'dead'],
  errors: ERRORS,
  source: `${STREAM_LUA}
local G, S, D = KEYS[1], KEYS[2], KEYS[3]
if not writable(G, 'hash') then return wrongtype(G, 'hash') end
if not writable(S, 'stream') then return wrongtype(S, 'stream') end
if not writable(D, 'stream') then return wrongtype(D, 'stream') end
local h = redis.call('HMGET', G, 'mode', 'state', 'pos', 'owner', 'expires', 'epoch')
local lease = 0
if h[4] and tonumber(h[5] or '0') > now_ms() then lease = tonumber(h[5]) end
local out = {h[1] or '', h[2] and 1 or 0, h[2] or '', h[3] or '', lease, h[6] or '', redis.call('XLEN', S)}
local found = nil
if redis.call('EXISTS', S) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info.name == ARGV[1] then found = info end
  end
end
if found then
  out[#out + 1] = 1
  out[#out + 1] = found.pending
  out[#out + 1] = found.lag or -1
  out[#out + 1] = found['last-delivered-id']
  out[#out + 1] = found['entries-read'] or -1
  out[#out + 1] = found.consumers
else
  out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = -1; out[#out + 1] = ''; out[#out + 1] = -1; out[#out + 1] = 0
end
out[#out + 1] = redis.call('XLEN', D)
return out`,
});

/**
 * Reads dead letters.
 *
 * KEYS: dead-letter stream
 * ARGV: start ('-' or '(<id>'), count
 * Reply: id, fields per entry
 */
const deadLettersScript = defineScript({
  name: 'streams.dead-letters',
  keys: ['dead'],
  errors: ERRORS,
  source: `${STREAM_LUA}
if not is_int(ARGV[2], 1, 10000) then return bad('count must be an integer from 1 to 10000') end
if not writable(KEYS[1], 'stream') then return wrongtype(KEYS[1], 'stream') end
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])) do
  out[#out + 1] = e[1]
  out[#out + 1] = e[2]
end
return out`,
});

/**
 * Re-drives dead letters to their source: per entry, adds its original fields to the source
 * stream as a new entry and deletes the dead letter, in one script, so each dead letter is
 * re-driven once (a resent call finds it gone). Entries of another source stream, or whose
 * fields were lost (the source entry was deleted before it died), are left in place.
 *
 * KEYS: dead-letter stream, source stream
 * ARGV: source name, count (used when no ids are given), ids...
 * Reply: per entry: dead id, outcome ('redriven' | 'missing' | 'other-stream' | 'no-fields'), new id or ''
 */
const redriveScript = defineScript({
  name: 'streams.redrive',
  keys: ['dead', 'stream'],
  errors: ERRORS,
  source: `${STREAM_LUA}
local D, S = KEYS[1], KEYS[2]
if not is_int(ARGV[2], 1, 10000) then return bad('count must be an integer from 1 to 10000') end
for i = 3, #ARGV do
  if not string.match(ARGV[i], '^%d+-%d+$') then return bad('malformed dead-letter id ' .. ARGV[i]) end
end
if not writable(D, 'stream') then return wrongtype(D, 'stream') end
if not writable(S, 'stream') then return wrongtype(S, 'stream') end
local picked = {}
if #ARGV > 2 then
  for i = 3, #ARGV do
    local e = redis.call('XRANGE', D, ARGV[i], ARGV[i])[1]
    picked[#picked + 1] = { ARGV[i], e }
  end
else
  for _, e in ipairs(redis.call('XRANGE', D, '-', '+', 'COUNT', ARGV[2])) do picked[#picked + 1] = { e[1], e } end
end
local out = {}
for _, p in ipairs(picked) do
  local id, e = p[1], p[2]
  local outcome, new = 'missing', ''
  if e then
    local f = {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    if f.stream ~= ARGV[1] then
      outcome = 'other-stream'
    else
      local ok, obj = pcall(cjson.decode, f.fields or '{}')
      local flat = {}
      if ok and type(obj) == 'table' then
        local names = {}
        for name, value in pairs(obj) do
          if type(value) == 'string' then names[#names + 1] = name end
        end
        table.sort(names)
        for _, name in ipairs(names) do flat[#flat + 1] = name; flat[#flat + 1] = obj[name] end
      end
      if #flat == 0 then
        outcome = 'no-fields'
      else
        new = redis.call('XADD', S, '*', unpack(flat))
        redis.call('XDEL', D, id)
        outcome = 'redriven'
      end
    end
  end
  out[#out + 1] = id; out[#out + 1] = outcome; out[#out + 1] = new
end
return out`,
});

/**
 * Options of a {@link StreamAdmin}: the same `stream`, `group`, `prefix`, `space`,
 * `deadLetterStream` and `codec` as the consumers of the group.
 *
 * @example
 * const options: StreamAdminOptions<{ total: number }> = { stream: { key: 'orders' }, group: 'billing' };
 */
export interface StreamAdminOptions<S = unknown> {
  /** The group's stream: a name inside the space, or `{ key }`. */
  stream: string | StreamKey;
  /** The consumer group. */
  group: string;
  /** @default 'x' */
  prefix?: string;
  /** @default 'default' */
  space?: string;
  /** @default as the consumer's: `${stream}:dead`, or for a raw key `<prefix>:streams:{<tag>}:dead:<key>` */
  deadLetterStream?: string | StreamKey;
  /** Decodes the stored state. @default JSON */
  codec?: StateCodec<S>;
}

/**
 * A group as stored, read by {@link StreamAdmin.info}.
 *
 * @example
 * const { lag, pending, state } = await admin.info();
 */
export interface StreamGroupInfo<S> {
  /** The Redis consumer group exists on the stream. */
  exists: boolean;
  /** The mode the group runs in, or null before its first start. */
  mode: StreamMode | null;
  /** Stateful: the committed state (decoded), or undefined when none was committed yet. */
  state: S | undefined;
  /** Stateful: the ID of the last committed (or dead-lettered) message, or null. */
  position: string | null;
  /** The last entry delivered to the group, or null. */
  lastDeliveredId: string | null;
  /** Entries delivered to the group and not yet committed (acknowledged). */
  pending: number;
  /** Entries not yet delivered to the group (Redis's `lag`), or null when Redis cannot tell. */
  lag: number | null;
  /** Redis consumers of the group. */
  consumers: number;
  /** Stateful: when the active instance's lease ends (server epoch ms), or null when none is active. */
  leaseExpiresAt: number | null;
  /** Stateful: the lease epoch (the fence of the current or last holder), or null. */
  epoch: string | null;
  /** Entries in the source stream. */
  length: number;
  /** Entries in the dead-letter stream (all groups writing there). */
  deadLetters: number;
}

/**
 * One dead-letter entry.
 *
 * @example
 * for (const dead of await admin.deadLetters()) console.log(dead.sourceId, dead.error);
 */
export interface DeadLetter {
  /** The dead-letter entry's own ID (what {@link StreamAdmin.redrive} takes). */
  id: string;
  /** The ID the message had in its source stream. */
  sourceId: string;
  /** The source stream's name (or raw key). */
  stream: string;
  group: string;
  /** `Name: message` of what the handler threw. */
  error: string;
  deliveries: number;
  /** The message's fields. */
  fields: StreamFields;
}

/**
 * What {@link StreamAdmin.redrive} did per dead letter: `redriven` (added to the source as
 * `newId`, deleted from the dead letters), `missing` (no such dead letter: already re-driven),
 * `other-stream` (it belongs to another source), `no-fields` (its fields were lost).
 *
 * @example
 * const results = await admin.redrive();
 */
export interface RedriveResult {
  id: string;
  outcome: 'redriven' | 'missing' | 'other-stream' | 'no-fields';
  newId: string | null;
}

/**
 * Operator calls on one group, without starting a consumer: read its state, lag and pending
 * count, list its dead letters and re-drive them to the source. Each call is one script.
 *
 * @example
 * const admin = new StreamAdmin(client, { stream: { key: 'orders' }, group: 'billing' });
 * const { lag, pending, state } = await admin.info();
 * const dead = await admin.deadLetters({ count: 20 });
 * await admin.redrive({ ids: dead.map((d) => d.id) }); // each goes back to 'orders' once
 */
export class StreamAdmin<S = unknown> {
  readonly #client: RedisClientLike;
  readonly #keys: GroupKeys;
  readonly #codec: StateCodec<S>;
  readonly #cluster: boolean;
  readonly #group: string;

  /** Checks the options (`InvalidArgumentError`); nothing is sent. */
  constructor(client: RedisClientLike, options: StreamAdminOptions<S>) {
    assertClient(client);
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    const stream = isStreamKey(options.stream) ? { key: assertKey('stream', options.stream) } : assertName('stream', options.stream);
    const group = assertName('group', options.group);
    const dl = options.deadLetterStream;
    const dead = dl === undefined ? undefined : isStreamKey(dl) ? { key: assertKey('deadLetterStream', dl) } : assertName('deadLetterStream', dl);
    const codec = options.codec ?? (jsonCodec as StateCodec<S>);
    if (typeof codec !== 'object' || codec === null || typeof codec.decode !== 'function') throw new InvalidArgumentError('codec must have a decode function');
    this.#client = client;
    this.#codec = codec;
    this.#keys = groupKeys(options.prefix ?? DEFAULT_PREFIX, options.space ?? DEFAULT_SPACE, stream, group, dead);
    this.#cluster = isClusterClient(client);
    this.#group = group;
  }

  /**
   * The group's mode, committed state and position, pending count, lag, lease, and the length of
   * its source and dead-letter streams.
   *
   * @example
   * const { lag, pending } = await admin.info();
   */
  async info(): Promise<StreamGroupInfo<S>> {
    this.#oneSlot('info', [this.#keys.group, this.#keys.dead]);
    const r = (await infoScript.run(this.#client, [this.#keys.group, this.#keys.stream, this.#keys.dead], [this.#group])) as unknown[];
    let state: S | undefined;
    if (Number(r[1]) === 1) {
      try {
        state = this.#codec.decode(String(r[2]));
      } catch (error) {
        throw new StreamCodecError(`the stored state of group ${this.#group} cannot be decoded`, { cause: error });
      }
    }
    const text = (v: unknown): string | null => (v === '' || v === null || v === undefined ? null : String(v));
    const lag = Number(r[9]);
    const lease = Number(r[4]);
    return {
      exists: Number(r[7]) === 1,
      mode: (text(r[0]) as StreamMode | null) ?? null,
      state,
      position: text(r[3]),
      lastDeliveredId: Number(r[7]) === 1 ? text(r[10]) : null,
      pending: Number(r[8]),
      lag: lag < 0 ? null : lag,
      consumers: Number(r[12]),
      leaseExpiresAt: lease > 0 ? lease : null,
      epoch: text(r[5]),
      length: Number(r[6]),
      deadLetters: Number(r[13]),
    };
  }

  /**
   * Lists dead letters, oldest first: `count` of them (default 100, at most 10,000) after the
   * dead-letter ID `after`.
   *
   * @example
   * let page = await admin.deadLetters({ count: 50 });
   * page = await admin.deadLetters({ count: 50, after: page.at(-1)?.id });
   */
  async deadLetters(options: { count?: number; after?: string } = {}): Promise<DeadLetter[]> {
    const count = assertInteger('count', options.count ?? 100, 1, 10_000);
    const start = options.after === undefined ? '-' : `(${assertId('after', options.after)}`;
    const r = (await deadLettersScript.run(this.#client, [this.#keys.dead], [start, count])) as unknown[];
    const out: DeadLetter[] = [];
    for (let i = 0; i + 1 < r.length; i += 2) {
      const flat = r[i + 1] as unknown[];
      const f: Record<string, string> = {};
      for (let j = 0; j + 1 < flat.length; j += 2) f[String(flat[j])] = String(flat[j + 1]);
      let fields: StreamFields = {};
      try {
        fields = JSON.parse(f.fields ?? '{}') as StreamFields;
      } catch {
        // Not written by this package: show no fields rather than fail the whole page.
      }
      out.push({
        id: String(r[i]),
        sourceId: f.id ?? '',
        stream: f.stream ?? '',
        group: f.group ?? '',
        error: f.error ?? '',
        deliveries: Number(f.deliveries ?? 0),
        fields,
      });
    }
    return out;
  }

  /**
   * Re-drives dead letters to the source stream: each becomes a new entry there (with its
   * original fields) and leaves the dead letters, in one script, so it is re-driven once even
   * when the call is resent. Every group of the stream sees the new entry. `ids` picks them;
   * without it, the oldest `count` (default 100).
   *
   * @example
   * const results = await admin.redrive({ ids: [dead.id] });
   * // [{ id: dead.id, outcome: 'redriven', newId: '1700000000123-0' }]
   */
  async redrive(options: { ids?: readonly string[]; count?: number } = {}): Promise<RedriveResult[]> {
    const count = assertInteger('count', options.count ?? 100, 1, 10_000);
    const ids = options.ids === undefined ? [] : [...options.ids].map((id) => assertId('ids', id));
    if (options.ids !== undefined && ids.length === 0) return [];
    this.#oneSlot('redrive', [this.#keys.dead]);
    const r = (await redriveScript.run(this.#client, [this.#keys.dead, this.#keys.stream], [this.#keys.name, count, ...ids])) as unknown[];
    const out: RedriveResult[] = [];
    for (let i = 0; i + 2 < r.length; i += 3) {
      out.push({ id: String(r[i]), outcome: String(r[i + 1]) as RedriveResult['outcome'], newId: r[i + 2] === '' ? null : String(r[i + 2]) });
    }
    return out;
  }

  #oneSlot(what: string, keys: string[]): void {
    if (this.#cluster) assertOneSlot(what, this.#keys.stream, keys);
  }
}

function assertId(label: string, value: unknown): string {
  if (typeof value !== 'string' || !/^\d+-\d+$/.test(value)) throw new InvalidArgumentError(`${label} must hold stream IDs like '1700000000000-0'`);
  return value;
}
