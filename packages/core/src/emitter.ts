import type { Logger } from './logger.js';

/**
 * A tiny typed event emitter. Unlike Node's EventEmitter an `error` event with no
 * listener is not thrown, and a throwing listener is logged, never propagated: user
 * code must not crash the guard.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: (...args: never[]) => void }> {
  readonly #listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  constructor(private readonly logger: () => Logger) {}

  on<K extends keyof Events>(name: K, listener: Events[K]): () => void {
    let set = this.#listeners.get(name);
    if (!set) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener);
    return () => this.off(name, listener);
  }

  off<K extends keyof Events>(name: K, listener: Events[K]): void {
    this.#listeners.get(name)?.delete(listener);
  }

  emit<K extends keyof Events>(name: K, ...args: Parameters<Events[K]>): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<Events[K]>) => void)(...args);
      } catch (err) {
        this.logger().error(
          { err, event: String(name) },
          'freezeguard: a listener of the guard threw',
        );
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
