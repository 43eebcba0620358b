"""`vibes-eval budget [CKPT] [--family F] [--image-size WxH]`: visual tokens per image, as a Rich table."""

from __future__ import annotations

import sys
from pathlib import Path

from vibes_eval.budget.checkpoint import budget_for_checkpoint
from vibes_eval.budget.geometry import CONTEXTS, DEFAULT_IMAGE_SIZES, FAMILIES, parse_image_size
from vibes_eval.errors import EXIT_OK, EXIT_USAGE, BudgetError

__all__ = ["add_budget_parser", "budget_command"]


def add_budget_parser(subparsers):
    """Define `vibes-eval budget [CKPT_DIR] [--family F] [--image-size WxH ...]`; returns the sub-parser."""
    p = subparsers.add_parser(
        "budget",
        help="visual tokens per image and the share of a 2k/32k/128k context they fill",
        description="Visual tokens one image costs, for a checkpoint folder or a family (no model is loaded).",
    )
    p.add_argument("checkpoint", nargs="?", type=Path, metavar="CKPT_DIR", help="a checkpoint folder to read")
    p.add_argument("--family", help=f"instead of CKPT_DIR: {' | '.join(FAMILIES)} (default: all three)")
    p.add_argument(
        "--image-size", action="append", metavar="WxH",
        help="image width x height, repeatable or comma separated (default: 336x336,672x672,1344x672,672x1344)",
    )
    return p


def budget_command(args, console=None) -> int:
    """Print one Rich table per spec: image, grid, visual tokens, % of each context. Returns the exit code.

    Bad sizes, an unknown family or an unreadable checkpoint print one line to stderr and return 2.
    """
    try:
        sizes = [parse_image_size(s) for arg in (args.image_size or []) for s in arg.split(",") if s.strip()]
        family, checkpoint = args.family, args.checkpoint
        if family and checkpoint:
            raise BudgetError("give CKPT_DIR or --family, not both")
        if checkpoint:
            specs = [budget_for_checkpoint(checkpoint)]
        elif family:
            if family not in FAMILIES:
                raise BudgetError(f"--family: unknown family {family!r} (known: {', '.join(FAMILIES)})")
            specs = [FAMILIES[family]]
        else:
            specs = list(FAMILIES.values())
        tables = [(spec, [spec.image(w, h) for w, h in sizes or DEFAULT_IMAGE_SIZES]) for spec in specs]
    except BudgetError as e:
        print(f"vibes-eval: {e}", file=sys.stderr)
        return EXIT_USAGE
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for spec, budgets in tables:
        table = Table(
            title=spec.describe(), title_justify="left", caption=spec.source or None, caption_justify="left"
        )
        for name in ("image", "grid", "features", "tokens"):
            table.add_column(name, justify="right" if name == "tokens" else "left")
        for ctx in CONTEXTS:
            table.add_column(f"{ctx // 1024}k", justify="right")  # share of a context of that many tokens
        for b in budgets:
            features = f"{b.features[0]}x{b.features[1]}" if b.features else ""
            shares = [f"[red]{b.share(c):.1%}[/]" if b.share(c) > 1 else f"{b.share(c):.1%}" for c in CONTEXTS]
            table.add_row(f"{b.width}x{b.height}", b.grid, features, str(b.tokens), *shares)
        console.print(table)
        if spec.projector:
            console.print(f"projector: {spec.projector}", highlight=False)
        for note in spec.notes:  # a processor that inserts another count, or cannot count at all
            console.print(f"[yellow]warning:[/] {note}", highlight=False)
    return EXIT_OK
