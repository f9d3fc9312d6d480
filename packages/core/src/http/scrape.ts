import { errorSummary } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MetricsExposition, ProbeResponse } from './options.js';

/**
 * The answer of `metricsPath`: 200 with the exposition, 503 when rendering failed. Scrapes
 * go on through a drain: never rejected, never counted in flight.
 */
export async function scrape(
  exposition: MetricsExposition,
  logger: () => Logger,
): Promise<ProbeResponse> {
  try {
    const body = await exposition.metrics();
    return {
      status: 200,
      headers: { 'Cache-Control': 'no-store', 'Content-Type': exposition.contentType },
      body,
    };
  } catch (err) {
    logger().warn({ err: errorSummary(err) }, 'freezeguard: rendering metrics failed');
    return {
      status: 503,
      headers: { 'Cache-Control': 'no-store', 'Content-Type': 'text/plain; charset=utf-8' },
      body: 'metrics unavailable',
    };
  }
}
