// A form to sign at the kiosk: when the specialist presents one (`form.presented`), its
// pages fill the screen (a frame that runs no script) with a signature pad below; the
// visitor signs with a finger (or a pen or mouse) and sends it (`form.sign`) or refuses
// (`form.decline`). The overlay closes on `form.signed` / `form.declined` or the call's end.

import { $, el } from "./dom.js";
import { MSG } from "./signaling.js";

/** The server's bounds (signaling/limits.py): the pad stops taking points beyond them. */
const MAX_POINTS = 4000;
const MAX_STROKES = 64;
/** A finger's jitter: points closer than this (CSS px) to the last one are not kept. */
const MIN_STEP = 2;

/** Strokes drawn on a canvas by touch events or pointer events (mouse, pen). */
export class SignaturePad {
  #canvas;
  #strokes = [];
  #current = null;
  #onChange;

  constructor(canvas, onChange) {
    this.#canvas = canvas;
    this.#onChange = onChange;
    // Touch through touch events; mouse and pen through pointer events (a finger would
    // otherwise arrive twice: as a touch and as a pointer of type "touch").
    canvas.addEventListener("touchstart", (e) => this.#touch(e, "start"), { passive: false });
    canvas.addEventListener("touchmove", (e) => this.#touch(e, "move"), { passive: false });
    canvas.addEventListener("touchend", (e) => this.#touch(e, "end"), { passive: false });
    canvas.addEventListener("touchcancel", (e) => this.#touch(e, "end"), { passive: false });
    canvas.addEventListener("pointerdown", (e) => this.#pointer(e, "start"));
    canvas.addEventListener("pointermove", (e) => this.#pointer(e, "move"));
    canvas.addEventListener("pointerup", (e) => this.#pointer(e, "end"));
    canvas.addEventListener("pointercancel", (e) => this.#pointer(e, "end"));
  }

  get empty() {
    return this.#strokes.length === 0;
  }

  /** The `signature` of `form.sign`: the pad's size and its strokes, in CSS pixels. */
  signature() {
    const { width, height } = this.#size();
    return { width, height, strokes: this.#strokes.map((s) => s.map(([x, y]) => [x, y])) };
  }

  clear() {
    this.#strokes = [];
    this.#current = null;
    this.#redraw();
    this.#onChange();
  }

  #size() {
    const box = this.#canvas.getBoundingClientRect();
    return { width: Math.max(1, Math.round(box.width)), height: Math.max(1, Math.round(box.height)) };
  }

  #point(clientX, clientY) {
    const box = this.#canvas.getBoundingClientRect();
    const { width, height } = this.#size();
    const clamp = (v, max) => Math.round(Math.min(max, Math.max(0, v)) * 10) / 10;
    return [clamp(clientX - box.left, width), clamp(clientY - box.top, height)];
  }

  #touch(event, phase) {
    event.preventDefault();
    const touch = event.changedTouches[0];
    if (touch) this.#at(phase, touch.clientX, touch.clientY);
  }

  #pointer(event, phase) {
    if (event.pointerType === "touch") return;
    if (phase === "start") this.#canvas.setPointerCapture?.(event.pointerId);
    if (phase !== "start" && !this.#current) return;
    event.preventDefault();
    this.#at(phase, event.clientX, event.clientY);
  }

  #at(phase, clientX, clientY) {
    const points = this.#strokes.reduce((n, s) => n + s.length, 0);
    if (phase === "start") {
      if (this.#strokes.length >= MAX_STROKES || points >= MAX_POINTS) return;
      this.#current = [this.#point(clientX, clientY)];
      this.#strokes.push(this.#current);
    } else if (this.#current && phase === "move") {
      const next = this.#point(clientX, clientY);
      const [lx, ly] = this.#current[this.#current.length - 1];
      if (points < MAX_POINTS && Math.hypot(next[0] - lx, next[1] - ly) >= MIN_STEP) this.#current.push(next);
    } else if (phase === "end") {
      this.#current = null;
    }
    this.#redraw();
    this.#onChange();
  }

  #redraw() {
    const { width, height } = this.#size();
    const scale = window.devicePixelRatio || 1;
    if (this.#canvas.width !== width * scale) {
      this.#canvas.width = width * scale;
      this.#canvas.height = height * scale;
    }
    const pen = this.#canvas.getContext("2d");
    pen.setTransform(scale, 0, 0, scale, 0, 0);
    pen.clearRect(0, 0, width, height);
    pen.strokeStyle = pen.fillStyle = "#102060";
    pen.lineWidth = 4;
    pen.lineCap = pen.lineJoin = "round";
    for (const stroke of this.#strokes) {
      pen.beginPath();
      pen.moveTo(...stroke[0]);
      for (const point of stroke.slice(1)) pen.lineTo(...point);
      if (stroke.length === 1) pen.arc(stroke[0][0], stroke[0][1], 2, 0, 2 * Math.PI);
      pen.stroke();
    }
  }
}

/** The overlay that shows a presented form and takes the visitor's signature. */
export class FormSigning {
  #signaling;
  #i18n;
  #root;
  #pad;
  #form = null;

  constructor({ signaling, i18n }) {
    this.#signaling = signaling;
    this.#i18n = i18n;
    const t = (key) => i18n.t(key);
    const canvas = el("canvas", { id: "signature-pad", className: "signature-pad", "aria-label": t("form.padLabel"), role: "img" });
    this.#root = el("section", { id: "form-signing", className: "form-signing", hidden: true, "aria-labelledby": "form-signing-title" },
      el("h1", { id: "form-signing-title", dataset: { i18n: "form.title" }, textContent: t("form.title") }),
      el("iframe", { id: "form-pages", className: "form-pages", sandbox: "", referrerPolicy: "no-referrer", title: t("form.pagesLabel") }),
      el("p", { className: "form-hint", dataset: { i18n: "form.hint" }, textContent: t("form.hint") }),
      canvas,
      el("div", { className: "row form-buttons" },
        this.#button("form-clear", "secondary", "form.clear", () => this.#pad.clear()),
        this.#button("form-decline", "danger", "form.decline", () => this.#decline()),
        this.#button("form-sign", "primary", "form.sign", () => this.#sign())),
      el("p", { id: "form-status", className: "note", role: "status" }));
    document.body.append(this.#root);
    this.#pad = new SignaturePad(canvas, () => { $("form-sign").disabled = this.#pad.empty; });
    signaling.on(MSG.FORM_PRESENTED, (m) => this.#open(m));
    signaling.on(MSG.FORM_SIGNED, (m) => this.#closed(m, "form.signed"));
    signaling.on(MSG.FORM_DECLINED, (m) => this.#closed(m, "form.declined"));
    signaling.on(MSG.CALL_ENDED, () => this.close());
    signaling.on(MSG.ERROR, (m) => {
      if (this.#form && m.refused?.startsWith("form.")) this.#status(i18n.error(m));
    });
  }

  #button(id, kind, key, onClick) {
    const button = el("button", { id, type: "button", className: `btn ${kind} big`, dataset: { i18n: key }, textContent: this.#i18n.t(key) });
    button.addEventListener("click", onClick);
    return button;
  }

  #status(text) {
    $("form-status").textContent = text;
  }

  #open(message) {
    // told again after a reconnection: the form already open keeps what was drawn on it
    if (this.#form?.form_id === message.form_id && !this.#root.hidden) return;
    this.#form = message;
    $("form-pages").src = message.url;
    this.#root.hidden = false;
    document.body.dataset.form = "open";
    this.#pad.clear();
    this.#status("");
  }

  #sign() {
    if (!this.#form || this.#pad.empty) return;
    const sent = this.#signaling.send(MSG.FORM_SIGN, { form_id: this.#form.form_id, signature: this.#pad.signature() });
    this.#status(this.#i18n.t(sent ? "form.signing" : "conn.reconnecting"));
    $("form-sign").disabled = sent;
  }

  #decline() {
    if (this.#form) this.#signaling.send(MSG.FORM_DECLINE, { form_id: this.#form.form_id });
  }

  #closed(message, key) {
    if (this.#form?.form_id !== message.form_id) return;
    this.close();
    document.body.dataset.formResult = key === "form.signed" ? "signed" : "declined";
  }

  close() {
    this.#form = null;
    this.#root.hidden = true;
    $("form-pages").removeAttribute("src");
    delete document.body.dataset.form;
  }
}
