import type { Guard, Participant } from './guard/guard.js';

/**
 * What every adapter gives back: the participant it registered with the guard, and
 * `close()` to unregister it. `guardExpress()` attaches these members to its middleware,
 * the Fastify plugin decorates `app.freezeguard` with them, `guardWorker()`,
 * `guardConnections()` and the streams helpers return one.
 *
 * @example
 * ```ts
 * const handle = guardWorker(guard, worker);
 * console.log(handle.participant.name); // 'bullmq:emails'
 * handle.close(); // the worker is no longer part of the lifecycle
 * ```
 */
export interface AdapterHandle {
  /** The participant registered with the guard (shown in `guard.status()` by its name). */
  readonly participant: Participant;
  /** Unregisters the participant and drops the adapter's listeners. Idempotent. */
  close(): void;
}

/**
 * Registers `participant` with `guard` and returns its {@link AdapterHandle}; `cleanup`
 * runs once, on the first `close()`. The one way adapters build their handle.
 *
 * @example
 * ```ts
 * const handle = registerParticipant(guard, { name: 'poller', phase: 'work', prepare, resume }, () =>
 *   poller.off('tick', onTick),
 * );
 * ```
 */
export function registerParticipant(
  guard: Guard,
  participant: Participant,
  cleanup?: () => void,
): AdapterHandle {
  const unregister = guard.use(participant);
  let closed = false;
  return {
    participant,
    close() {
      if (closed) return;
      closed = true;
      unregister();
      cleanup?.();
    },
  };
}
