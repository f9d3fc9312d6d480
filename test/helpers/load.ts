import {
  type Rehearsal,
  type RehearseFreezeOptions,
  rehearseFreeze,
  type Simulator,
  startSimulator,
} from '@freezeguard/simulator';
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

/** Two VMs, vm-a and vm-b, an Azure emulator each; `closers` closes them. */
export async function twoAzureVms(
  closers: (() => Promise<unknown> | unknown)[],
): Promise<[Simulator, Simulator]> {
  const simA = await startSimulator({ resourceName: 'vm-a' });
  const simB = await startSimulator({ resourceName: 'vm-b' });
  closers.push(
    () => simA.close(),
    () => simB.close(),
  );
  return [simA, simB];
}

/** The guard's environment behind the test HAProxy: guarded, or the unguarded twin. */
export function behindHaproxy(guarded: boolean): Record<string, string> {
  return {
    // HAProxy needs 2 failed checks 500 ms apart: drain for longer than that.
    FREEZEGUARD_DRAIN_DELAY_MS: '2500',
    ...(guarded ? {} : { FREEZEGUARD_DISABLED: '1' }),
  };
}
