import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.config.base';

// The library, plus the CLI and the page's plain assets (copied as they are: no build step for users).
export default defineConfig({ ...(packageConfig as object), entry: ['src/index.ts', 'src/cli.ts'], publicDir: 'page', shims: true });
