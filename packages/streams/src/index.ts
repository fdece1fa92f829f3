export { StreamConsumer, type StreamConsumerStatus } from './consumer';
export { StreamProducer, type StreamProducerOptions } from './producer';
export type { StreamConsumerOptions, StreamHandler, StreamMode } from './options';
export type { StreamMessage, StreamFields } from './message';
export type { StreamTransaction } from './transaction';
export type { StreamAddress, StreamKey, StreamTarget } from './keys';
export { jsonCodec, type StateCodec } from './codec';
export { StreamFencedError, StreamCrossSlotError, StreamModeConflictError, StreamCodecError } from './errors';
export { InvalidArgumentError, XRedisError } from '@x/redis-core';
