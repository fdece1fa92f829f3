export { StreamConsumer, type StreamConsumerStatus } from './consumer';
export { StreamProducer, type StreamProducerOptions } from './producer';
export type { StreamConsumerOptions, StreamHandler, StreamMode } from './options';
export type { StreamMessage, StreamFields } from './message';
export type { StreamTransaction, StreamAddress } from './transaction';
export { jsonCodec, type StateCodec } from './codec';
export { StreamFencedError, StreamCrossSlotError, StreamModeConflictError, StreamCodecError } from './errors';
export { closeRedisResources, configureRedisClient } from '@x/redis-core';
