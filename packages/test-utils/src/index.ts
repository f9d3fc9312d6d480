export { freePort } from './net.js';
export { MissingPrerequisiteError, pingRedis, type RedisHandle, startRedis } from './redis.js';
