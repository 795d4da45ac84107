// Staff reset a kiosk by holding the logo and confirming in a dialog: a visitor's tap
// never does it by chance, and no keyboard is needed.
import { $ } from "./dom.js";

const RESET_HOLD_MS = 3000;

/** Calls `onReset` once staff confirmed the reset dialog the held logo opened. */
export function watchResetGesture(onReset) {
  let timer = null;
  const logo = $("logo");
  const cancel = () => clearTimeout(timer);
  logo.addEventListener("pointerdown", () => {
    cancel();
    timer = setTimeout(() => $("reset-dialog").showModal(), RESET_HOLD_MS);
  });
  for (const type of ["pointerup", "pointerleave", "pointercancel"]) logo.addEventListener(type, cancel);
  logo.addEventListener("contextmenu", (event) => event.preventDefault());
  $("reset-dialog").addEventListener("close", () => {
    if ($("reset-dialog").returnValue === "reset") onReset();
  });
}
