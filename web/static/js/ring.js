// The incoming-call ring: a two-tone beep made with WebAudio (no sound file).
// Browsers only let audio start after a user gesture, so unlock() is called
// from the specialist's first click (the status toggle).

const TONES_HZ = [880, 660];
const BEEP_S = 0.18;
const PERIOD_MS = 1500;

export class Ringer {
  #context = null;
  #timer = null;

  get ringing() {
    return this.#timer !== null;
  }

  /** True when the browser lets us make a sound now. */
  get audible() {
    return this.#context?.state === "running";
  }

  unlock() {
    this.#context ??= new AudioContext();
    if (this.#context.state === "suspended") this.#context.resume().catch(() => {});
  }

  start() {
    if (this.#timer !== null) return;
    this.unlock();
    this.#beep();
    this.#timer = setInterval(() => this.#beep(), PERIOD_MS);
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
  }

  #beep() {
    const ctx = this.#context;
    if (!ctx) return;
    TONES_HZ.forEach((frequency, i) => {
      const start = ctx.currentTime + i * (BEEP_S + 0.05);
      const oscillator = ctx.createOscillator();
      const gain = ctx.createGain();
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + BEEP_S);
      oscillator.connect(gain).connect(ctx.destination);
      oscillator.start(start);
      oscillator.stop(start + BEEP_S + 0.02);
    });
  }
}
