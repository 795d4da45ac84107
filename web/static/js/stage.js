// Who is on screen during a call. A joint session is a mesh of up to four, so remote
// streams arrive from several participants: the page's main party (the console: the
// caller; the kiosk: the specialist who answered) stays in the large video, the others
// get small captioned tiles. When the main party leaves (a transfer), the next one
// that is still there takes the large video.

import { el } from "./dom.js";

export class RemoteStage {
  #main;
  #tiles;
  #label;
  #isMain;
  #parties = new Map();
  #onMain = null;

  /**
   * media: the page's CallMedia; main: the large <video>; tiles: the element holding the
   * small ones; label: shows the main party's name (or null); isMain(participant): may be
   * in the large video.
   */
  constructor({ media, main, tiles, label = null, isMain }) {
    this.#main = main;
    this.#tiles = tiles;
    this.#label = label;
    this.#isMain = isMain;
    media.on("remote-track", (event) => this.show(event));
    media.on("remote-left", (event) => this.remove(event));
    media.on("peers-closed", () => this.clear());
  }

  show({ participant, stream }) {
    const known = this.#parties.get(participant.id);
    this.#parties.set(participant.id, { participant, stream, tile: known?.tile ?? null });
    this.#render();
  }

  remove({ id }) {
    this.#parties.get(id)?.tile?.remove();
    this.#parties.delete(id);
    this.#render();
  }

  clear() {
    for (const party of this.#parties.values()) party.tile?.remove();
    this.#parties.clear();
    this.#onMain = null;
    this.#main.srcObject = null;
    this.#tiles.hidden = true;
  }

  #render() {
    const parties = [...this.#parties.values()];
    const main = parties.find((p) => p.participant.id === this.#onMain) ??
      parties.find((p) => this.#isMain(p.participant)) ?? null;
    this.#onMain = main?.participant.id ?? null;
    if (this.#main.srcObject !== (main?.stream ?? null)) this.#main.srcObject = main?.stream ?? null;
    if (main && this.#label) this.#label.textContent = main.participant.name ?? "";
    for (const party of parties) {
      if (party === main) {
        party.tile?.remove();
        party.tile = null;
        continue;
      }
      if (!party.tile) {
        const video = el("video", { autoplay: true, playsInline: true, muted: false });
        party.tile = el("figure", { className: "tile", dataset: { participant: party.participant.id } },
          video, el("figcaption", { textContent: party.participant.name ?? "" }));
        this.#tiles.append(party.tile);
      }
      const video = party.tile.querySelector("video");
      if (video.srcObject !== party.stream) video.srcObject = party.stream;
    }
    this.#tiles.hidden = this.#tiles.childElementCount === 0;
  }
}
