import type { RedisClientLike } from '@x/redis-core';

// Redis Cluster's key → slot mapping (CRC16/XMODEM of the hash tag, mod 16384), computed here so
// that a commit whose keys would span slots is refused before anything is sent.

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/**
 * The part of `key` Redis Cluster hashes: the text between the first `{` and the first `}` after
 * it when that is not empty, else the whole key.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/** The Redis Cluster slot of `key`. */
export function slotOf(key: string): number {
  return crc16(Buffer.from(hashTagOf(key), 'utf8')) % 16_384;
}

/**
 * A hash tag (the text to put between braces) that sends keys to the slot of `key`. It is the
 * key's own tag, or the key itself when it has none; a key without a tag that holds a `}` cannot
 * be put between braces, so the first `slot<n>` with the same slot stands in for it.
 */
export function tagFor(key: string): string {
  const tag = hashTagOf(key);
  if (!tag.includes('}')) return tag;
  const slot = slotOf(key);
  for (let n = 0; ; n++) {
    const candidate = `slot${n}`;
    if (slotOf(candidate) === slot) return candidate;
  }
}

/** Whether `client` is a Redis Cluster client (node-redis's cluster keeps `masters`). */
export function isClusterClient(client: RedisClientLike): boolean {
  return typeof client === 'object' && client !== null && 'masters' in client;
}
