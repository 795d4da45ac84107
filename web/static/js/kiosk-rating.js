// The kiosk's rating form: five stars (a radio group of buttons), an optional
// comment, and the line that says how sending it went.

import { $, el } from "./dom.js";

export class RatingForm {
  #t;
  #score = 0;

  /** t(key, params): the kiosk's wording; onSubmit({score, comment}) once a star is chosen. */
  constructor({ t, onSubmit }) {
    this.#t = t;
    $("rating-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.#score) {
        this.status(t("rating.pick"));
        return;
      }
      onSubmit({ score: this.#score, comment: $("rating-comment").value.trim() });
    });
  }

  /** Nothing chosen, nothing typed: for the next visitor. */
  reset() {
    this.#score = 0;
    $("rating-comment").value = "";
    this.status("");
    this.render();
  }

  status(text) {
    $("rating-status").textContent = text;
  }

  render() {
    $("rating-stars").replaceChildren(...[1, 2, 3, 4, 5].map((n) => {
      const star = el("button", {
        type: "button", className: "star", role: "radio", "aria-checked": String(n === this.#score),
        "aria-label": this.#t("rating.star", { n }), dataset: { score: String(n) },
        textContent: n <= this.#score ? "★" : "☆",
      });
      star.addEventListener("click", () => {
        this.#score = n;
        this.render();
        $("rating-stars").querySelector(`[data-score="${n}"]`).focus();
      });
      return star;
    }));
  }
}
