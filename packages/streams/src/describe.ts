import {
  LUA_HELPERS,
  InvalidArgumentError,
  assertName,
  assertPrefix,
  defineScript,
  globEscape,
  nameOfKey,
  scanKeys,
  type Describe,
  type DescribeOptions,
  type ListOptions,
  type RedisClientLike,
} from '@x/redis-core';
import { ERRORS } from './lua';
import { DEFAULT_SPACE, streamSpace } from './keys';

/** Options of the streams' `describe`. */
export interface StreamDescribeOptions extends DescribeOptions {
  /** The space (hash tag) of the stream. @default 'default' */
  space?: string;
  /** The stream's dead-letter stream. @default `${name}:dead` */
  deadLetterStream?: string;
}

/** A consumer group of a stream, with the lease of its stateful processor. */
export interface DescribedGroup {
  name: string;
  /** `stateful` or `competing`, or null for a group this package did not create. */
  mode: 'stateful' | 'competing' | null;
  consumers: number;
  /** Delivered, not yet acknowledged. */
  pending: number;
  /** Entries not yet delivered to the group (null when Redis cannot tell, after a deletion). */
  lag: number | null;
  lastDeliveredId: string;
  /** The stateful processor's lease: its epoch and expiry (server epoch ms); null in competing mode or when free. */
  lease: { epoch: number; expiresAt: number; live: boolean } | null;
  /** The committed position (stateful mode). */
  position: string | null;
}

/** A dead letter: a message that failed `maxDeliveries` times, with its error. */
export interface DeadLetter {
  /** Entry ID in the dead-letter stream. */
  deadId: string;
  /** The message's ID in its own stream. */
  id: string;
  group: string;
  error: string;
  deliveries: number;
  /** The message's fields, as JSON. */
  fields: string;
}

/** A stream's live state, as an operator sees it. */
export interface StreamDescription {
  kind: 'streams';
  name: string;
  space: string;
  /** Server time of the read, epoch ms. */
  now: number;
  length: number;
  /** ID of the newest entry, or null when empty. */
  lastId: string | null;
  groups: DescribedGroup[];
  deadLetterStream: string;
  deadLetters: number;
  /** The newest dead letters (up to 20), newest first. */
  recentDeadLetters: DeadLetter[];
}

const RECENT = 20;

/**
 * KEYS: stream, dead-letter stream.
 * Reply: {now, stream exists, length, last id or '', #groups, (name, consumers, pending, last id, lag or -1) ...,
 *         dead length, (dead id, id, group, error, deliveries, fields) ...}
 */
const describeScript = defineScript({
  name: 'streams.describe',
  keys: ['stream', 'dead'],
  errors: ERRORS,
  source:
    LUA_HELPERS +
    `
local S, D = KEYS[1], KEYS[2]
local function stype(k)
  local t = redis.call('TYPE', k)
  if type(t) == 'table' then t = t.ok end
  return t
end
local reply = {int(now_ms())}
if stype(S) == 'stream' then
  local last = redis.call('XREVRANGE', S, '+', '-', 'COUNT', 1)[1]
  table.insert(reply, 1)
  table.insert(reply, redis.call('XLEN', S))
  table.insert(reply, last and last[1] or '')
  local groups = redis.call('XINFO', 'GROUPS', S)
  table.insert(reply, #groups)
  for _, g in ipairs(groups) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    table.insert(reply, f['name'])
    table.insert(reply, f['consumers'] or 0)
    table.insert(reply, f['pending'] or 0)
    table.insert(reply, f['last-delivered-id'] or '0-0')
    local lag = f['lag']
    if type(lag) ~= 'number' then lag = -1 end
    table.insert(reply, lag)
  end
else
  table.insert(reply, 0) table.insert(reply, 0) table.insert(reply, '') table.insert(reply, 0)
end
if stype(D) == 'stream' then
  table.insert(reply, redis.call('XLEN', D))
  for _, e in ipairs(redis.call('XREVRANGE', D, '+', '-', 'COUNT', ${RECENT})) do
    local f = {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    table.insert(reply, e[1])
    table.insert(reply, f['id'] or '')
    table.insert(reply, f['group'] or '')
    table.insert(reply, f['error'] or '')
    table.insert(reply, tonumber(f['deliveries'] or '0') or 0)
    table.insert(reply, f['fields'] or '{}')
  end
else
  table.insert(reply, 0)
end
return reply
`,
});

/** KEYS: group hash. Reply: {mode, owner set (0|1), epoch, expires, pos} ('' when absent). */
const groupScript = defineScript({
  name: 'streams.describe-group',
  keys: ['group'],
  source: `
local v = redis.call('HMGET', KEYS[1], 'mode', 'owner', 'epoch', 'expires', 'pos')
return {v[1] or '', v[2] and 1 or 0, v[3] or '', v[4] or '', v[5] or ''}
`,
});

/**
 * Moves dead letters of `stream` back to it, oldest first, as new entries with their original
 * fields. KEYS: stream, dead-letter stream. ARGV: stream name, count, dead id ('' for any).
 * Reply: how many moved.
 */
const redriveScript = defineScript({
  name: 'streams.redrive',
  keys: ['stream', 'dead'],
  errors: ERRORS,
  source: `
local S, D = KEYS[1], KEYS[2]
local name, count, only = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local entries
if only ~= '' then entries = redis.call('XRANGE', D, only, only)
else entries = redis.call('XRANGE', D, '-', '+', 'COUNT', count) end
local moved = 0
for _, e in ipairs(entries) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if f['stream'] == name then
    local ok, fields = pcall(cjson.decode, f['fields'] or '{}')
    local args = {}
    if ok and type(fields) == 'table' then
      for k, v in pairs(fields) do
        if type(v) == 'string' then table.insert(args, k) table.insert(args, v) end
      end
    end
    if #args == 0 then args = {'redriven', f['id'] or ''} end
    redis.call('XADD', S, '*', unpack(args))
    redis.call('XDEL', D, e[1])
    moved = moved + 1
  end
end
return moved
`,
});

function setup(name: string, options: StreamDescribeOptions) {
  assertName('name', name);
  const space = streamSpace(assertPrefix(options.prefix ?? 'x'), options.space ?? DEFAULT_SPACE);
  const deadLetterStream = assertName('deadLetterStream', options.deadLetterStream ?? `${name}:dead`);
  return { space, deadLetterStream, keys: [space.stream(name), space.stream(deadLetterStream)] };
}

async function describeStream(client: RedisClientLike, name: string, options: StreamDescribeOptions = {}): Promise<StreamDescription | null> {
  const { space, deadLetterStream, keys } = setup(name, options);
  const r = (await describeScript.run(client, keys)) as Array<string | number>;
  const now = Number(r[0]);
  const exists = Number(r[1]) === 1;
  let i = 5;
  const raw: Array<{ name: string; consumers: number; pending: number; lastDeliveredId: string; lag: number | null }> = [];
  for (let g = 0; g < Number(r[4]); g++, i += 5) {
    raw.push({ name: String(r[i]), consumers: Number(r[i + 1]), pending: Number(r[i + 2]), lastDeliveredId: String(r[i + 3]), lag: Number(r[i + 4]) < 0 ? null : Number(r[i + 4]) });
  }
  const deadLetters = Number(r[i]);
  const recentDeadLetters: DeadLetter[] = [];
  for (i += 1; i + 5 < r.length; i += 6) {
    recentDeadLetters.push({ deadId: String(r[i]), id: String(r[i + 1]), group: String(r[i + 2]), error: String(r[i + 3]), deliveries: Number(r[i + 4]), fields: String(r[i + 5]) });
  }
  if (!exists && deadLetters === 0) return null;
  const groups = await Promise.all(
    raw.map(async (g): Promise<DescribedGroup> => {
      const [mode, owned, epoch, expires, pos] = (await groupScript.run(client, [space.group(name, g.name)])) as [string, number, string, string, string];
      const lease = mode === 'stateful' && Number(owned) === 1 && expires !== '' ? { epoch: Number(epoch), expiresAt: Number(expires), live: Number(expires) > now } : null;
      return { ...g, mode: mode === 'stateful' || mode === 'competing' ? mode : null, lease, position: pos === '' ? null : pos };
    }),
  );
  return { kind: 'streams', name, space: space.space, now, length: Number(r[2]), lastId: r[3] === '' ? null : String(r[3]), groups, deadLetterStream, deadLetters, recentDeadLetters };
}

/**
 * The live state of the stream `name` (length, groups with their lag, pending count and lease,
 * the dead letters), or `null` when neither it nor its dead-letter stream exists.
 * `describe.list` finds the streams under a prefix, in every space, with `SCAN` on every
 * master (a dead-letter stream `<s>:dead` is listed under `<s>`). Read-only.
 *
 * @example
 * import { describe } from '@x/streams';
 * const pay = await describe(client, 'payments', { prefix: 'x', space: 'default' });
 * for (const g of pay?.groups ?? []) console.log(g.name, 'lags by', g.lag);
 * console.log(pay?.deadLetters, 'dead letters');
 */
export const describe: Describe<StreamDescription, { name: string; space: string }, StreamDescribeOptions> = Object.assign(describeStream, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const prefix = assertPrefix(options.prefix ?? 'x');
    const limit = options.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000) throw new InvalidArgumentError('limit must be an integer from 1 to 100000');
    const head = `${prefix}:streams:{`;
    const found = new Map<string, { name: string; space: string }>();
    for (const key of await scanKeys(client, `${globEscape(head)}*}:s:*`, limit * 4)) {
      const space = nameOfKey(head, key);
      if (space === null) continue;
      const rest = key.slice(key.indexOf('}', head.length) + 1);
      if (!rest.startsWith(':s:')) continue;
      const name = rest.slice(3);
      found.set(JSON.stringify([space, name]), { name, space });
    }
    const refs = [...found.values()].filter((r) => !(r.name.endsWith(':dead') && found.has(JSON.stringify([r.space, r.name.slice(0, -5)]))));
    return refs.sort((a, b) => (a.space === b.space ? cmp(a.name, b.name) : cmp(a.space, b.space))).slice(0, limit);
  },
});

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * An operator's action: moves dead letters of the stream `name` back to it (oldest first, at
 * most `count`, or only the one with `deadId`), as new entries with their original fields, so
 * its consumers process them again. Returns how many moved. One round trip.
 *
 * @example
 * await redrive(client, 'payments', { prefix: 'x', count: 100 });
 */
export async function redrive(client: RedisClientLike, name: string, options: StreamDescribeOptions & { count?: number; deadId?: string } = {}): Promise<number> {
  const { keys } = setup(name, options);
  const count = options.count ?? 100;
  if (!Number.isSafeInteger(count) || count < 1 || count > 10_000) throw new InvalidArgumentError('count must be an integer from 1 to 10000');
  if (options.deadId !== undefined && !/^\d+-\d+$/.test(options.deadId)) throw new InvalidArgumentError('deadId must be a stream entry ID');
  return Number(await redriveScript.run(client, keys, [name, count, options.deadId ?? '']));
}
