import { TypedEmitter } from '../emitter.js';
import type { GuardEventName, GuardEvents } from './types.js';

/**
 * The guard's listeners: Node's `once`/`off`/`removeListener` semantics over the
 * {@link TypedEmitter} (a throwing listener is logged, never propagated).
 *
 * @example
 * ```ts
 * const listeners = new GuardListeners(() => logger);
 * listeners.once('approved', ({ eventId }) => console.log(eventId));
 * ```
 */
export class GuardListeners extends TypedEmitter<GuardEvents> {
  // events.once() removes the listener it gave, not our wrapper: map one to the other.
  readonly #onceWrappers = new WeakMap<object, () => void>();

  once<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    const off = this.on(name, ((...args: Parameters<GuardEvents[K]>) => {
      off();
      (listener as (...a: Parameters<GuardEvents[K]>) => void)(...args);
    }) as GuardEvents[K]);
    this.#onceWrappers.set(listener, off);
    return off;
  }

  override off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    super.off(name, listener);
    this.#onceWrappers.get(listener)?.();
  }
}
