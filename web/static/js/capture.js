// A still of what a camera shows, at the camera's full resolution, uploaded to the
// session (POST /api/sessions/{id}/documents; the server re-encodes it and tells every
// participant with `document.added`). Used by the kiosk when the specialist asks
// (`document.request`) and by the console for a still of the received video.

const JPEG_QUALITY = 0.92;

function canvasBlob(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(source, 0, 0, width, height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no image"))), "image/jpeg", JPEG_QUALITY);
  });
}

/**
 * A JPEG of the track's current frame: ImageCapture.takePhoto (the camera's still
 * resolution) where the browser has it, else grabFrame, else the <video> drawn on a canvas.
 */
export async function stillOf(track, video) {
  if (track && track.readyState === "live" && "ImageCapture" in globalThis) {
    const capture = new ImageCapture(track);
    try {
      const photo = await capture.takePhoto();
      if (photo.type === "image/jpeg" || photo.type === "image/png") return photo;
    } catch {
      // not every camera takes photos (fake ones, screens): a frame of the stream will do
    }
    try {
      const frame = await capture.grabFrame();
      return await canvasBlob(frame, frame.width, frame.height);
    } catch {
      // fall back to the element
    }
  }
  if (!video || !video.videoWidth) throw new Error("no video to capture");
  return canvasBlob(video, video.videoWidth, video.videoHeight);
}

/** Upload a still; resolves to the stored document ({id, kind, sha256, width, height...}). */
export async function uploadStill(sessionId, blob, headers = {}) {
  const response = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}/documents`, {
    method: "POST",
    headers: { ...headers, "Content-Type": blob.type, Accept: "application/json" },
    body: blob,
    credentials: "same-origin",
  });
  const data = response.headers.get("Content-Type")?.includes("application/json") ? await response.json() : null;
  if (!response.ok) throw Object.assign(new Error(data?.message ?? `HTTP ${response.status}`), { code: data?.error, status: response.status });
  return data.document;
}

/** The kiosk's answer to `document.request`: take, upload, and say how it went in `notice`. */
export async function sendStill({ sessionId, track, video, token, notice, t }) {
  notice.hidden = false;
  notice.textContent = t("capture.taking");
  try {
    await uploadStill(sessionId, await stillOf(track, video), { Authorization: `Bearer ${token}` });
    notice.textContent = t("capture.sent");
  } catch {
    notice.textContent = t("capture.failed");
  }
}
