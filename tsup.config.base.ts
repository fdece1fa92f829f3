import { defineConfig } from 'tsup';

/** The one build every published package shares: dual ESM + CJS, each with its own types. */
export const packageConfig = defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  target: 'node20',
  clean: true,
  sourcemap: true,
  treeshake: true,
});
