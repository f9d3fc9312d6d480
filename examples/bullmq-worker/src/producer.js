// Adds COUNT jobs to the queue and exits.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const env = process.env;
const queueName = env.QUEUE ?? 'freezeguard-example';
const count = Number(env.COUNT ?? 100);
const connection = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: null,
});
const queue = new Queue(queueName, { connection });
await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'job', data: { i } })));
console.log(`added ${count} jobs to ${queueName}`);
await queue.close();
connection.disconnect();
