import { packageConfig } from '../../tsup.config.base';

// The main entry, and one per framework adapter (each imports its framework's types only).
export default { ...packageConfig, entry: ['src/index.ts', 'src/express.ts', 'src/fastify.ts', 'src/hono.ts', 'src/koa.ts'] };
