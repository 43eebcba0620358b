"""Image thumbnails for the HTML report, as self-contained `data:` URIs.

A thumbnail is decoration: a missing or unreadable image gives a placeholder note, never a
crash, so a report can still be written for a run whose images moved since.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_PX", "MIN_PX", "Thumbnail", "allowed_roots", "make_thumbnail", "safe_thumbnail", "thumbnail_image"]

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
    img, note = thumbnail_image(image_path, max_px, min_px)
    if img is None:
        return Thumbnail(None, note)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Thumbnail(uri, note)


def thumbnail_image(image_path: str | Path | None, max_px: int = MAX_PX, min_px: int = MIN_PX):
    """(a small PIL image of `image_path`, its original size as `WxH`), or (None, why there is none).

    The thumbnail of `make_thumbnail`, before encoding: what the trackers log as an image.
    """
    if not image_path:
        return None, "no image"
    path = Path(image_path)
    if not path.is_file():
        return None, f"image not found: {path.name or path}"
    from PIL import Image

    from vibes_eval.limits import MAX_PIXELS

    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > MAX_PIXELS:  # checked from the header, before decoding
                return None, f"image too large to show: {path.name} ({im.size[0]}x{im.size[1]})"
            im.load()
            size = im.size
            img = im.convert("RGBA" if _has_alpha(im) else "RGB")
    # Pillow raises OSError, ValueError, SyntaxError or DecompressionBombError for bad files
    # depending on the format plugin; none of them may stop the report.
    except Exception as e:  # noqa: BLE001
        return None, f"image unreadable: {path.name} ({type(e).__name__})"

    w, h = img.size
    longest = max(w, h)
    if longest > max_px:
        img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    elif longest * 2 <= min_px:
        k = min_px // longest
        img = img.resize((w * k, h * k), Image.Resampling.NEAREST)
    return img, f"{size[0]}x{size[1]}"


def _has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def allowed_roots(scorecard, source: str | Path | None = None) -> list[Path]:
    """Folders a report may embed images from: the scorecard's own folder (when read from a file) and the
    folder of the suite it recorded, if that suite file is still there with the recorded sha256.

    A scorecard.json is data anyone can craft: without this, `compare` would embed whatever local
    image it names (a private photo, into an HTML file that then gets shared).
    """
    import hashlib

    roots = []
    if source is not None:
        src = Path(source)
        roots.append((src if src.is_dir() else src.parent).resolve())
    suite = getattr(scorecard, "suite", None) or {}
    suite_path, sha = suite.get("path"), suite.get("sha256")
    if isinstance(suite_path, str) and suite_path:
        p = Path(suite_path)
        try:
            if p.is_file() and p.stat().st_size <= 16 << 20 and sha == hashlib.sha256(p.read_bytes()).hexdigest():
                roots.append(p.resolve().parent)
        except OSError:
            pass
    return roots


def safe_thumbnail(image_path: str | Path | None, roots: list[Path]) -> Thumbnail:
    """`make_thumbnail`, but only for an image inside one of `roots` (symlinks resolved); else a placeholder."""
    if not image_path:
        return Thumbnail(None, "no image")
    try:
        path = Path(image_path).resolve()
    except (OSError, RuntimeError, ValueError):
        return Thumbnail(None, "image not shown")
    if not any(path.is_relative_to(r) for r in roots):
        return Thumbnail(None, f"image not shown: {Path(image_path).name} is outside the report's and its suite's folders")
    return make_thumbnail(path)
