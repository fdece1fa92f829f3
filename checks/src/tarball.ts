import { readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** What a package tarball holds. */
export interface TarballFigures {
  /** Bytes of the .tgz itself (what the registry stores and npm downloads). */
  packedBytes: number;
  /** Sum of the sizes of the files inside. */
  unpackedBytes: number;
  /** Number of files inside. */
  files: number;
  /** Their paths, without the leading `package/`. */
  paths: string[];
}

/** Reads a .tgz made by `pnpm pack` (ustar, gzip) without unpacking it. */
export function tarballFigures(file: string): TarballFigures {
  const tar = gunzipSync(readFileSync(file));
  const paths: string[] = [];
  let unpackedBytes = 0;
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    const body = tar.subarray(offset + 512, offset + 512 + size);
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') {
      paths.push(name.replace(/^package\//, ''));
      unpackedBytes += size;
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return { packedBytes: statSync(file).size, unpackedBytes, files: paths.length, paths: paths.sort() };
}

/** 12345 → `12.1 kB` (1 kB = 1000 B, as npm prints them). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1_000_000).toFixed(2)} MB`;
}
