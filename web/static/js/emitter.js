// The event emitter shared by the signalling client, peer sessions and calls.

/** A minimal synchronous event emitter; a throwing handler does not stop the others. */
export class Emitter {
  #handlers = new Map();

  /** Subscribe; returns the function that unsubscribes. */
  on(type, handler) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(handler);
    return () => this.off(type, handler);
  }

  off(type, handler) {
    this.#handlers.get(type)?.delete(handler);
  }

  emit(type, detail) {
    for (const handler of [...(this.#handlers.get(type) ?? [])]) {
      try {
        handler(detail);
      } catch (err) {
        console.error(`handler for ${type} failed`, err);
      }
    }
  }
}
