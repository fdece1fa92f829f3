import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/global-setup.ts', 'src/global-teardown.ts', 'src/child.ts'],
  format: ['cjs'],
  dts: true,
  target: 'node20',
  clean: true,
});
