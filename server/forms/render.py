"""Rendering forms: a template filled in, WeasyPrint's PDF, a signature drawn by Pillow.

These functions run in the form workers' processes (`server.forms.pool`), never on the
event loop: a two-page form with CJK text takes a few hundred milliseconds of CPU.
They take and return plain data (picklable) and touch no database or socket.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image, ImageDraw

#: Longest side of the signature image placed in the PDF: sharp at 30 mm, small in bytes.
SIGNATURE_PX = 900
INK = (16, 32, 96, 255)  # dark blue, like a pen


@lru_cache(maxsize=8)
def _environment(template_dir: str) -> jinja2.Environment:
    """One Jinja environment per templates directory, per worker (autoescaped HTML)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir), autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def fill(template_dir: str, template: str, context: dict[str, Any]) -> str:
    """The form's HTML: `configs/forms/<template>.html` filled with `context`."""
    return _environment(template_dir).get_template(f"{template}.html").render(**context)


def to_pdf(html: str, base_url: str) -> bytes:
    """The HTML as PDF, fonts subset and embedded (the Noto CJK font for Chinese)."""
    from weasyprint import HTML  # imported in the worker only: it loads Pango

    pdf = HTML(string=html, base_url=base_url).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def draw_signature(width: int, height: int, strokes: list[list[tuple[float, float]]]) -> bytes:
    """The strokes, drawn in ink on a transparent PNG scaled so its longer side is
    `SIGNATURE_PX`; a stroke of one point is a dot."""
    scale = SIGNATURE_PX / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.new("RGBA", size, (255, 255, 255, 0))
    pen = ImageDraw.Draw(image)
    line = max(3, round(SIGNATURE_PX / 150))
    for stroke in strokes:
        points = [(x * scale, y * scale) for x, y in stroke]
        if len(points) > 1:
            pen.line(points, fill=INK, width=line, joint="curve")
        for x, y in (points[0], points[-1]):  # round ends
            r = line / 2
            pen.ellipse((x - r, y - r, x + r, y + r), fill=INK)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def present_html(template_dir: str, template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(SHA-256, HTML) of the form as presented: what the visitor reads before signing.
    The hash is printed on the signed PDF, and the HTML kept, so either can be checked."""
    html = fill(template_dir, template, {**context, "signature": None})
    return hashlib.sha256(html.encode("utf-8")).hexdigest(), html


def render_signed(template_dir: str, template: str, context: dict[str, Any],
                  signature: dict[str, Any], caption: dict[str, str]) -> tuple[str, bytes]:
    """(SHA-256, PDF) of the signed form: the signature image in the signature box with
    `caption`'s signer, time and the unsigned form's hash printed under it."""
    png = draw_signature(signature["width"], signature["height"], signature["strokes"])
    image = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    html = fill(template_dir, template, {**context, "signature": {**caption, "image": image}})
    pdf = to_pdf(html, template_dir)
    return hashlib.sha256(pdf).hexdigest(), pdf


def write_new(path: str, data: bytes) -> None:
    """Write a file that must not exist yet (a signed form is never overwritten)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def sign_and_store(template_dir: str, template: str, context: dict[str, Any],
                   signature: dict[str, Any], caption: dict[str, str], path: str) -> str:
    """Render the signed form and write it to `path`; its SHA-256. The PDF bytes stay in
    the worker: only the hash crosses back to the server."""
    digest, pdf = render_signed(template_dir, template, context, signature, caption)
    write_new(path, pdf)
    return digest


def warm_up() -> None:
    """Load WeasyPrint and Pango in a fresh worker so the first form is not slow."""
    to_pdf("<p>预热</p>", ".")


def lower_priority(nice: int) -> None:
    """Worker initializer: forms yield the CPU to the live calls' signalling and relay."""
    if nice > 0:
        os.nice(nice)
