// The visitor's camera and microphone, and the document camera shown instead of the face
// on request: opened when a visit needs them, released as soon as it ends (a kiosk never
// keeps a camera open between visitors).
import { $ } from "./dom.js";
import { openCameraAndMicrophone, openDocumentSource, stopStream } from "./media.js";
import { mediaErrorMessageKey } from "./media-errors.js";

export class KioskCamera {
  #t;
  #stream = null;
  #documentTrack = null;

  constructor({ t }) {
    this.#t = t;
  }

  /** The track a still is taken from: the document camera while it is shown. */
  get videoTrack() {
    return this.#documentTrack ?? this.#stream?.getVideoTracks()[0];
  }

  /** The camera and microphone, opened on first use (rejects with the browser's error). */
  async open() {
    if (!this.#stream) {
      this.#stream = await openCameraAndMicrophone();
      $("preview").srcObject = this.#stream;
      $("self-video").srcObject = this.#stream;
    }
    return this.#stream;
  }

  release() {
    stopStream(this.#stream);
    if (this.#documentTrack) this.#documentTrack.stop();
    this.#stream = null;
    this.#documentTrack = null;
    $("preview").srcObject = null;
    $("self-video").srcObject = null;
    $("capture-state").hidden = true;
    $("show-document").textContent = this.#t("call.showDocument");
  }

  /** Shows the document camera in the call instead of the face, or the face again. */
  async toggleDocument(media) {
    if (this.#documentTrack) {
      this.#documentTrack.stop();
      this.#documentTrack = null;
      await media.sendVideo(null);
      media.setStatus({ document: false });
      $("self-video").srcObject = this.#stream;
      $("show-document").textContent = this.#t("call.showDocument");
      return;
    }
    try {
      const track = await openDocumentSource(this.#stream?.getVideoTracks()[0]);
      this.#documentTrack = track;
      track.addEventListener("ended", () => {
        if (this.#documentTrack === track) this.toggleDocument(media);
      });
      await media.sendVideo(track);
      media.setStatus({ document: true });
      $("self-video").srcObject = new MediaStream([track]);
      $("show-document").textContent = this.#t("call.showCamera");
    } catch (err) {
      $("media-state").textContent = this.#t(mediaErrorMessageKey(err));
    }
  }
}
