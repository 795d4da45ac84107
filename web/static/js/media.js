// Camera and microphone: getUserMedia with errors turned into i18n keys, and
// the "show document" source (a second camera, else a captured screen).

export class MediaError extends Error {
  /** key: an i18n key naming what the user can do about it. */
  constructor(key, cause) {
    super(key);
    this.key = key;
    this.cause = cause;
  }
}

/** The i18n key for a getUserMedia failure (DOMException names from Media Capture). */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "media.denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "media.missing";
    case "NotReadableError":
    case "AbortError":
      return "media.busy";
    default:
      return "media.failed";
  }
}

export async function openCameraAndMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) throw new MediaError("media.insecure");
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    });
  } catch (err) {
    throw new MediaError(mediaErrorKey(err), err);
  }
}

/** A video track for documents: another camera than the one in use, or the screen. */
export async function openDocumentSource(currentTrack) {
  const currentId = currentTrack?.getSettings().deviceId;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const other = devices.find((d) => d.kind === "videoinput" && d.deviceId && d.deviceId !== currentId);
  try {
    if (other) {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { deviceId: { exact: other.deviceId }, width: { ideal: 1920 } },
      });
      return stream.getVideoTracks()[0];
    }
    if (navigator.mediaDevices.getDisplayMedia) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      return stream.getVideoTracks()[0];
    }
  } catch (err) {
    throw new MediaError(mediaErrorKey(err), err);
  }
  throw new MediaError("media.noDocumentSource");
}

export function stopStream(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}
