"""Regenerate the images of the committed suites, deterministically.

    pip install scikit-image   # only for this script: the photos ship in its wheel
    python bench/make_suite_images.py

suites/images/shapes/  10 toy-world scenes (64x64 PNG) drawn by vibes_eval.toy.world, one per
                       prompt of suites/shapes.yaml, named after the prompt. The scenes are
                       written out by hand below so every answer is exact; the script then checks
                       that each caption reference in shapes.yaml is the scene's caption.
suites/images/photos/  7 photos from scikit-image's bundled data (licences in ATTRIBUTION.md),
                       resized so the longer side is at most 336 px, saved as JPEG quality 85.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vibes_eval.toy.world import Scene, Shape, render  # noqa: E402

SUITES = ROOT / "suites"
MAX_SIDE = 336
JPEG_QUALITY = 85


def _two(left: tuple[str, str, int, int], right: tuple[str, str, int, int], jitter: int) -> Scene:
    """Two shapes: (color, kind, cy, size) on each side; cx fixed at 17 and 47, as sample_scene would draw."""
    (lc, lk, ly, ls), (rc, rk, ry, rs) = left, right
    return Scene((Shape(lk, lc, "left", 17, ly, ls), Shape(rk, rc, "right", 47, ry, rs)), jitter=jitter)


def _one(color: str, kind: str, side: str, cx: int, cy: int, size: int, jitter: int) -> Scene:
    return Scene((Shape(kind, color, side, cx, cy, size),), jitter=jitter)


# One scene per prompt of suites/shapes.yaml; positions in sample_scene's ranges
# (left cx 13-21, right cx 43-51, cy 16-48, size 15-21, jitter -12..12).
SCENES: dict[str, Scene] = {
    "describe-two": _two(("red", "circle", 30, 19), ("red", "square", 36, 17), jitter=3),
    "describe-one": _one("yellow", "triangle", "right", 46, 28, 21, jitter=-6),
    "describe-pair": _two(("green", "square", 40, 17), ("green", "circle", 22, 20), jitter=8),
    "color-triangle": _two(("blue", "triangle", 26, 20), ("blue", "square", 42, 16), jitter=-2),
    "shape-single": _one("green", "circle", "left", 19, 33, 20, jitter=5),
    "count-two": _two(("yellow", "triangle", 20, 18), ("yellow", "triangle", 44, 19), jitter=-10),
    "add-one-more": _one("blue", "circle", "right", 49, 38, 18, jitter=0),
    "same-kind": _two(("yellow", "square", 35, 18), ("yellow", "triangle", 27, 21), jitter=11),
    "refuse-person": _two(("green", "triangle", 24, 21), ("green", "circle", 40, 16), jitter=-4),
    "refuse-address": _one("red", "square", "left", 15, 45, 15, jitter=6),
}

# name in scikit-image's data folder -> name in suites/images/photos/
PHOTOS = {
    "astronaut.png": "astronaut.jpg",
    "chelsea.png": "chelsea.jpg",
    "coffee.png": "coffee.jpg",
    "rocket.jpg": "rocket.jpg",
    "hubble_deep_field.jpg": "hubble_deep_field.jpg",
    "camera.png": "camera.jpg",
    "horse.png": "horse.jpg",
}


def make_shapes() -> None:
    out = SUITES / "images" / "shapes"
    out.mkdir(parents=True, exist_ok=True)
    for name, scene in SCENES.items():
        render(scene).save(out / f"{name}.png", optimize=True)
    # the suite's caption references must be the scenes' captions: check, do not trust
    suite = yaml.safe_load((SUITES / "shapes.yaml").read_text())
    for prompt in suite["prompts"]:
        scene = SCENES[Path(prompt["image"]).stem]
        if prompt["category"] == "captioning" and prompt["reference"] != scene.caption():
            raise SystemExit(f"shapes.yaml: {prompt['id']}: reference {prompt['reference']!r} != {scene.caption()!r}")
    print(f"wrote {len(SCENES)} scenes to {out.relative_to(ROOT)}")


def make_photos() -> None:
    import skimage  # only here: scikit-image is not a dependency of vibes-eval

    data = Path(skimage.__file__).parent / "data"
    out = SUITES / "images" / "photos"
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for src, dst in PHOTOS.items():
        with Image.open(data / src) as im:
            if im.mode in ("RGBA", "LA", "P"):
                # horse.png is a black silhouette on a transparent background: put it on white
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            # grayscale too is saved as RGB: some image processors expect three channels
            im = im.convert("RGB")
            scale = MAX_SIDE / max(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
            im.save(out / dst, "JPEG", quality=JPEG_QUALITY, optimize=True)
        size = (out / dst).stat().st_size
        total += size
        print(f"{src:24} -> photos/{dst:24} {im.width}x{im.height} {size / 1024:.0f} KB")
    print(f"wrote {len(PHOTOS)} photos to {out.relative_to(ROOT)}: {total / 1024:.0f} KB in all")


if __name__ == "__main__":
    make_shapes()
    make_photos()
