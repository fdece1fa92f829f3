import { createHash } from 'node:crypto';
import { toTagged } from './codec';

/**
 * The fingerprint of a request: SHA-256 (hex) of its canonical JSON, in which object keys are
 * sorted, so `{ a: 1, b: 2 }` and `{ b: 2, a: 1 }` have the same fingerprint. Array order counts.
 * `undefined`, `Date`, `bigint` and the other values the default codec keeps are told apart
 * (`1n` is not `"1"`). Functions, symbols and circular structures are refused with an
 * `InvalidArgumentError`.
 *
 * @example
 * fingerprintOf({ amount: 100, currency: 'EUR' }) === fingerprintOf({ currency: 'EUR', amount: 100 }); // true
 */
export function fingerprintOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/**
 * Canonical JSON of `value`: the tagged tree of the default codec with every object's keys sorted.
 *
 * @example
 * canonicalJson({ b: [2, 1], a: undefined }); // '{"a":{"$x":"u"},"b":[2,1]}'
 */
export function canonicalJson(value: unknown): string {
  return stringifySorted(toTagged(value, new Set()));
}

function stringifySorted(node: unknown): string {
  if (node === null || typeof node !== 'object') return JSON.stringify(node);
  if (Array.isArray(node)) return `[${node.map(stringifySorted).join(',')}]`;
  const object = node as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stringifySorted(object[k])}`).join(',')}}`;
}
