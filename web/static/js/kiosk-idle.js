// The kiosk's idle clock: `[kiosk] idle_reset_s` (the page's data-idle-reset-s)
// without a touch or a key, the visitor has walked away.

const TOUCHES = ["pointerdown", "keydown", "input", "wheel"];

export class IdleClock {
  #ms;
  #onIdle;
  #timer = null;

  /** onIdle() runs each time the clock runs out; it restarts by itself after. */
  constructor({ seconds, onIdle }) {
    this.#ms = (Number(seconds) || 90) * 1000;
    this.#onIdle = onIdle;
  }

  /** Count from every touch or key on the page (capture: before any handler stops them). */
  watch(root = document) {
    for (const type of TOUCHES) root.addEventListener(type, () => this.restart(), { capture: true, passive: true });
    this.restart();
  }

  restart() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.restart();
      this.#onIdle();
    }, this.#ms);
  }
}
