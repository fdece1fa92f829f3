import { defineConfig } from 'tsup';

/** The one build every published package shares: dual ESM + CJS, each with its own types. */
export const packageConfig = defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  // Members marked @internal (a grant's keeper hooks) stay out of the published types.
  dts: { compilerOptions: { stripInternal: true } },
  target: 'node20',
  clean: true,
  sourcemap: true,
  treeshake: true,
});
