import { InvalidArgumentError } from '@x/redis-core';

/**
 * Turns stored results into strings and back. Whatever a codec does, decoding must never execute
 * anything taken from the stored text.
 *
 * @example
 * const plainJson: Codec = { encode: (v) => JSON.stringify(v), decode: (s) => JSON.parse(s) };
 * const store = new IdempotencyStore(client, { codec: plainJson });
 */
export interface Codec {
  /** The stored text of `value`; throw to refuse a value that cannot be stored. */
  encode(value: unknown): string;
  /** The value back from the stored text. */
  decode(text: string): unknown;
}

// Values JSON cannot hold travel as {"$x": tag, "v": payload}; a plain object that happens to own
// a "$x" key is wrapped as {"$x": "o", "v": {...}} so that it can never be taken for a tag.
const TAG = '$x';

/**
 * The default codec: JSON in which `undefined` (also as an array item or a property value),
 * `Date`, `bigint`, `NaN`/`±Infinity`/`-0`, `Map`, `Set` and byte arrays (`Uint8Array`, `Buffer`,
 * decoded as `Buffer`) round-trip, written as tagged JSON objects. Decoding is `JSON.parse` plus a
 * walk that rebuilds those values: nothing stored is executed on load, and a `__proto__` key stays
 * an ordinary property. Functions, symbols and circular structures are refused with an
 * `InvalidArgumentError`; class instances are stored as their own enumerable properties (or their
 * `toJSON()`), like JSON does.
 *
 * @example
 * const text = jsonCodec.encode({ at: new Date(0), n: 10n, gone: undefined });
 * jsonCodec.decode(text); // { at: Date(1970-01-01), n: 10n, gone: undefined }
 */
export const jsonCodec: Codec = {
  encode(value: unknown): string {
    return JSON.stringify(toTagged(value, new Set()));
  },
  decode(text: string): unknown {
    const parsed: unknown = JSON.parse(text);
    // Text without a tag needs no walk: JSON.parse already keeps "__proto__" an own property.
    return text.includes('"$x"') ? fromTagged(parsed) : parsed;
  },
};

/**
 * `value` as a JSON-safe tree in which undefined, Date, bigint and the others are tags.
 * Shared with the fingerprint, which serialises the same tree with sorted keys.
 */
export function toTagged(value: unknown, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'undefined':
      return { [TAG]: 'u' };
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Object.is(value, -0)) return { [TAG]: 'n', v: '-0' };
      return Number.isFinite(value) ? value : { [TAG]: 'n', v: String(value) };
    case 'bigint':
      return { [TAG]: 'b', v: value.toString() };
    case 'function':
    case 'symbol':
      throw new InvalidArgumentError(`cannot store a ${typeof value}`);
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) throw new InvalidArgumentError('cannot store a circular structure');
  seen.add(object);
  try {
    if (object instanceof Date) {
      const time = object.getTime();
      return { [TAG]: 'd', v: Number.isNaN(time) ? null : object.toISOString() };
    }
    if (object instanceof Uint8Array) {
      return { [TAG]: 'B', v: Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64') };
    }
    if (Array.isArray(object)) {
      const out: unknown[] = [];
      // Holes become undefined, which round-trips (JSON would turn them into null).
      for (let i = 0; i < object.length; i++) out.push(toTagged(object[i], seen));
      return out;
    }
    if (object instanceof Map) {
      return { [TAG]: 'M', v: [...object].map(([k, v]) => [toTagged(k, seen), toTagged(v, seen)]) };
    }
    if (object instanceof Set) return { [TAG]: 'S', v: [...object].map((v) => toTagged(v, seen)) };
    const toJSON = (object as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return toTagged(toJSON.call(object), seen);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(object)) put(out, key, toTagged((object as Record<string, unknown>)[key], seen));
    return Object.prototype.hasOwnProperty.call(object, TAG) ? { [TAG]: 'o', v: out } : out;
  } finally {
    seen.delete(object);
  }
}

function fromTagged(node: unknown): unknown {
  if (node === null || typeof node !== 'object') return node;
  if (Array.isArray(node)) return node.map(fromTagged);
  const object = node as Record<string, unknown>;
  if (!Object.prototype.hasOwnProperty.call(object, TAG)) return plainObject(object);
  const v = object.v;
  switch (object[TAG]) {
    case 'u':
      return undefined;
    case 'n':
      if (v === 'NaN' || v === 'Infinity' || v === '-Infinity' || v === '-0') return Number(v);
      break;
    case 'b':
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
      break;
    case 'd':
      if (v === null || typeof v === 'string') return new Date(v === null ? NaN : v);
      break;
    case 'B':
      if (typeof v === 'string') return Buffer.from(v, 'base64');
      break;
    case 'M':
      if (Array.isArray(v)) return new Map(v.map((entry) => pair(entry)));
      break;
    case 'S':
      if (Array.isArray(v)) return new Set(v.map(fromTagged));
      break;
    case 'o':
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return plainObject(v as Record<string, unknown>);
      break;
  }
  throw new TypeError(`jsonCodec: malformed tagged value ${JSON.stringify(object).slice(0, 80)}`);
}

function pair(entry: unknown): [unknown, unknown] {
  if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError('jsonCodec: malformed Map entry');
  return [fromTagged(entry[0]), fromTagged(entry[1])];
}

function plainObject(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(object)) put(out, key, fromTagged(object[key]));
  return out;
}

/** Sets an own property; `__proto__` becomes a data property instead of changing the prototype. */
export function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
