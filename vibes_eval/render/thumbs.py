"""Image thumbnails for the HTML report, as self-contained `data:` URIs.

A thumbnail is decoration: a missing or unreadable image gives a placeholder note, never a
crash, so a report can still be written for a run whose images moved since.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_PX", "MIN_PX", "Thumbnail", "make_thumbnail"]

MAX_PX = 160
"""Longest side of a thumbnail; larger images are shrunk to it."""
MIN_PX = 128
"""Images smaller than this (the toy's 64x64) are enlarged by a whole factor towards it."""


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail ready for an `<img src=...>`, or the note to show in its place."""

    uri: str | None
    """`data:image/png;base64,...`, or None when there is no image to show."""
    note: str = ""
    """Why there is no image (shown as a placeholder), or the original size when there is."""


def make_thumbnail(image_path: str | Path | None, max_px: int = MAX_PX, min_px: int = MIN_PX) -> Thumbnail:
    """Read an image and encode a small PNG of it as a data URI.

    Args:
        image_path: The image file; None or "" means the prompt has none.
        max_px: Longest side after shrinking a large image.
        min_px: Tiny images are enlarged with NEAREST (crisp pixels) by the largest whole
            factor that keeps them at or below this size, so a 64x64 image shows at 128x128.

    Returns:
        A Thumbnail with `uri` set, or with `uri=None` and a placeholder `note`.
    """
    if not image_path:
        return Thumbnail(None, "no image")
    path = Path(image_path)
    if not path.is_file():
        return Thumbnail(None, f"image not found: {path.name or path}")
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            size = im.size
            img = im.convert("RGBA" if _has_alpha(im) else "RGB")
    # Pillow raises OSError, ValueError, SyntaxError or DecompressionBombError for bad files
    # depending on the format plugin; none of them may stop the report.
    except Exception as e:  # noqa: BLE001
        return Thumbnail(None, f"image unreadable: {path.name} ({type(e).__name__})")

    w, h = img.size
    longest = max(w, h)
    if longest > max_px:
        img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    elif longest * 2 <= min_px:
        k = min_px // longest
        img = img.resize((w * k, h * k), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Thumbnail(uri, f"{size[0]}x{size[1]}")


def _has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
