// redlock 5's package.json "exports" hides its types from TypeScript's resolver: the part we use.
declare module 'redlock' {
  import type { Redis } from 'ioredis';
  interface Lock {
    release(): Promise<unknown>;
  }
  export default class Redlock {
    constructor(clients: Redis[], settings?: { retryCount?: number; retryDelay?: number; retryJitter?: number });
    acquire(resources: string[], duration: number): Promise<Lock>;
  }
}
