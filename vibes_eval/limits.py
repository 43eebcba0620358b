"""Bounds on every input, in one place: image pixels, remote answers, questions, suites, model sizes.

`open_image(source)` is the one way to decode an untrusted image: the pixel count is read from
the header and checked before any pixel is decoded (Pillow's own bomb check only warns below
179 M pixels, and a 20000x20000 PNG is a few hundred kilobytes).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from vibes_eval.errors import ImageTooLarge

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_CONCURRENT_SERVE",
    "MAX_NEW_TOKENS",
    "MAX_PIXELS",
    "MAX_QUESTION_CHARS",
    "MAX_RESPONSE_BYTES",
    "MAX_SUITE_BYTES",
    "MAX_YAML_NODES",
    "ImageTooLarge",
    "open_image",
]

MAX_PIXELS = 40_000_000
"""Largest image (width x height) decoded: a 40 MP photo is 120 MB as RGB; LLaVA resizes to < 1 MP anyway."""
MAX_RESPONSE_BYTES = 16 << 20
"""Largest HTTP response body read from a server (an endless body is cut here and is an error)."""
MAX_ANSWER_CHARS = 20_000
"""Longest answer kept from a server; longer ones are cut and flagged (4096 tokens of English fit)."""
MAX_QUESTION_CHARS = 16_000
"""Longest question `serve` accepts."""
MAX_CONCURRENT_SERVE = 2
"""Requests `serve` decodes and answers at once; more wait, and past a short queue get 503."""
MAX_SUITE_BYTES = 4 << 20
"""Largest suite file read (a suite is prompts and paths, not data)."""
MAX_YAML_NODES = 100_000
"""Most YAML nodes a suite may expand to with its aliases counted at every use (an alias bomb: billions)."""
MAX_NEW_TOKENS = 32_768
"""Largest max_new_tokens a suite may ask for at all; a checkpoint's own context is checked at run time."""


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS):
    """Decode `source` (a path or the file's bytes) to an RGB PIL image, refusing huge ones first.

    Raises:
        ImageTooLarge: the header declares more than `max_pixels` pixels.
        OSError, ValueError, SyntaxError: not a readable image (Pillow's own errors; UnidentifiedImageError is an OSError).
    """
    from PIL import Image

    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source)
    try:
        im = Image.open(fp)
    except Image.DecompressionBombError as e:  # declared size over Pillow's own hard limit (179 M pixels)
        raise ImageTooLarge(_too_large(e, max_pixels)) from None
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLarge(f"image too large: {w}x{h} pixels (at most {max_pixels:,} are decoded)")
        try:
            return im.convert("RGB")
        except Image.DecompressionBombError as e:
            raise ImageTooLarge(_too_large(e, max_pixels)) from None


def _too_large(e: Exception, max_pixels: int) -> str:
    m = re.search(r"\((\d+) pixels\)", str(e))
    declared = f"{int(m.group(1)):,} pixels" if m else "over Pillow's limit"
    return f"image too large: {declared} (at most {max_pixels:,} are decoded)"
