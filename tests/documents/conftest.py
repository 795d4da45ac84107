"""Fixtures of the documents and materials tests: the real app, a connected call, images."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import ExifTags, Image, ImageDraw

from tests.helpers import add_manager, connected_call

SHANGHAI_GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 22.0, 48.0),
                ExifTags.GPS.GPSLongitudeRef: "E",
                ExifTags.GPS.GPSLongitude: (121.0, 15.0, 36.0)}


@pytest.fixture
def routing_backend(request: pytest.FixtureRequest) -> str:
    """Memory routing unless a test asks for both (`indirect` parametrization)."""
    backend = str(getattr(request, "param", "memory"))
    if backend == "redis":
        request.getfixturevalue("redis_key_prefix")
    return backend


@pytest.fixture
def recording_dir(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
async def client(aiohttp_client: Any, make_app: Callable[..., web.Application],
                 recording_dir: Path) -> AsyncIterator[Any]:
    """The real app with a small upload limit (64 KiB) and its own recording directory."""
    app = make_app(recording={"enabled": False, "dir": str(recording_dir)},
                   documents={"max_bytes": 64 * 1024})
    yield await aiohttp_client(app)


@pytest.fixture
async def call(client: Any) -> Any:
    """A terminal and a specialist connected in a call of the tax queue."""
    return await connected_call(client)


@pytest.fixture
async def manager(client: Any) -> str:
    return await add_manager(client.server.app)


def licence_photo(exif: bool = True, size: tuple[int, int] = (640, 400)) -> bytes:
    """A JPEG like a document camera's: a red seal on white, with camera and GPS EXIF."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, size[0] - 20, 60), fill=(40, 40, 40))
    draw.ellipse((size[0] - 160, size[1] - 160, size[0] - 40, size[1] - 40), fill=(200, 0, 0))
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[ExifTags.Base.Make] = "DocCam"
        tags[ExifTags.Base.Model] = "GaoPaiYi 3000"
        tags.get_ifd(ExifTags.IFD.GPSInfo).update(SHANGHAI_GPS)
        image.save(out, "JPEG", quality=90, exif=tags)
    else:
        image.save(out, "JPEG", quality=90)
    return out.getvalue()


def png_photo(size: tuple[int, int] = (300, 200)) -> bytes:
    image = Image.new("RGBA", size, (0, 128, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []
