import { readFileSync } from 'node:fs';

/** A fenced TypeScript block of a README. */
export interface ReadmeBlock {
  /** 1-based among the README's TypeScript blocks. */
  index: number;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
}

/**
 * Every ```ts (or ```typescript) block of a Markdown file, in order, whatever follows the language
 * on the fence line: every TypeScript block must run, there is no opt-out.
 */
export function typescriptBlocks(file: string): ReadmeBlock[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)(\s.*)?$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.trim().startsWith(fence); i++) body.push(lines[i]!);
    blocks.push({ index: blocks.length + 1, line: start + 1, code: body.join('\n') });
  }
  return blocks;
}
