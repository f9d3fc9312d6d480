import {
  type FreezeguardError,
  type MaintenanceDocument,
  type MaintenanceSource,
  systemClock,
  systemTimers,
  type TimeReferenceSample,
} from '@freezeguard/core';
import { recordingLogger } from '@freezeguard/core/testing';
import { EnvHttpProxyAgent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';

// Set-up the Azure, GCE and EC2 source tests share: a source started with callbacks that
// record everything it delivers, and an environment whose proxy would break any request.

/** Starts `source` recording its documents, errors and time references; `stops` gets its stop(). */
export function recordSource<S extends MaintenanceSource>(
  source: S,
  stops: (() => Promise<void>)[],
) {
  const docs: MaintenanceDocument[] = [];
  const errors: { error: FreezeguardError; streak: number }[] = [];
  const times: TimeReferenceSample[] = [];
  const logger = recordingLogger();
  source.start({
    logger,
    clock: systemClock,
    timers: systemTimers,
    onDocument: (d) => docs.push(d),
    onError: (error, streak) => errors.push({ error, streak }),
    onTimeReference: (s) => times.push(s),
  });
  stops.push(() => source.stop());
  return { source, docs, errors, logger, times, last: () => docs.at(-1)! };
}

/**
 * Runs `fn` with HTTP(S)_PROXY pointing at a port nothing listens on and a global
 * dispatcher that honours them, so any request not sent on the source's own agent fails;
 * both are restored afterwards.
 */
export async function withDeadProxy(fn: () => Promise<void>): Promise<void> {
  const saved = {
    http: process.env.HTTP_PROXY,
    https: process.env.HTTPS_PROXY,
    dispatcher: getGlobalDispatcher(),
  };
  process.env.HTTP_PROXY = 'http://127.0.0.1:9';
  process.env.HTTPS_PROXY = 'http://127.0.0.1:9';
  setGlobalDispatcher(new EnvHttpProxyAgent());
  try {
    await fn();
  } finally {
    if (saved.http === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved.http;
    if (saved.https === undefined) delete process.env.HTTPS_PROXY;
    else process.env.HTTPS_PROXY = saved.https;
    setGlobalDispatcher(saved.dispatcher);
  }
}
