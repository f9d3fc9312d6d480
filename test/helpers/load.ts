import { type Rehearsal, type RehearseFreezeOptions, rehearseFreeze } from '@freezeguard/simulator';
import autocannon from 'autocannon';

/**
 * Fixed-rate load on `url` (20 connections, 2 s timeout) for `durationS`; one second in,
 * a freeze rehearsed on the instance. Resolves when the load is over.
 */
export async function loadThroughFreeze(
  url: string,
  load: { readonly rate: number; readonly durationS: number },
  freeze: RehearseFreezeOptions,
): Promise<{ rehearsal: Rehearsal; result: autocannon.Result }> {
  const running = autocannon({
    url,
    connections: 20,
    overallRate: load.rate,
    duration: load.durationS,
    timeout: 2,
  });
  await new Promise((r) => setTimeout(r, 1000));
  const rehearsal = await rehearseFreeze(freeze);
  return { rehearsal, result: await running };
}
