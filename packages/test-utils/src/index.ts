export { freePort, httpStatus } from '@freezeguard/simulator/process';
export { type HarnessApp, type HttpAdapterHarness, httpAdapterContract } from './http-contract.js';
export {
  MissingPrerequisiteError,
  pingRedis,
  type RedisClusterHandle,
  type RedisHandle,
  startRedis,
  startRedisCluster,
} from './redis.js';
export { type SseClient, sseClient } from './sse.js';
export { until, wait } from './wait.js';
