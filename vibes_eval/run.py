"""`vibes-eval run`: suite + checkpoint(s) -> scorecard files, terminal table, exit code.

Bad usage or suite: one line, exit 2, nothing loaded. A checkpoint that cannot be evaluated:
one line, exit 3, and a scorecard that says so is still written (with whatever was computed).
Each checkpoint goes through `api.evaluate`; this module adds the command line, the progress
display and the files.
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import nullcontext
from pathlib import Path

from vibes_eval import guard
from vibes_eval.api import EvaluationFailed, evaluate, resolve_suite
from vibes_eval.atomic import check_writable_dir, check_writable_file
from vibes_eval.errors import EXIT_EVAL, EXIT_USAGE, UsageError, command
from vibes_eval.loaders.base import AdapterSpec
from vibes_eval.render.reports import new_run_id, write_reports  # json + html + junit, atomic, one run id, redacted
from vibes_eval.resources import bundled_suite, default_suite
from vibes_eval.run_display import StageBars, SweepDisplay
from vibes_eval.safety import say, strip_control

__all__ = [
    "add_run_parser",
    "default_out",
    "default_suite",
    "parse_run_args",
    "run_command",
    "spec_from_args",
    "write_reports",
]


def default_out(name: str, stamp: str | None = None) -> Path:
    """`./reports/<name>-<timestamp>/` in the current directory."""
    stamp = stamp or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{name}-{stamp}"


def spec_from_args(args, ckpt: Path | None) -> AdapterSpec:
    """The AdapterSpec for one checkpoint (or the server) of a `run` command line."""
    return AdapterSpec(
        checkpoint=ckpt, adapter=args.adapter, device=args.device, dtype=args.dtype, template=args.template,
        batch_size=args.batch_size, base=args.base, vision_tower=args.vision_tower,
        base_url=args.base_url, model=args.model, concurrency=args.concurrency, timeout=args.timeout,
    )


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def add_run_parser(subparsers):
    """Define `vibes-eval run CKPT [CKPT ...] [options]`; returns the sub-parser."""
    run = subparsers.add_parser("run", help="run a suite on checkpoint(s) and write the scorecard (terminal, JSON, HTML)")
    run.add_argument("checkpoints", metavar="CKPT", nargs="*", type=Path, help="checkpoint folder(s); none with --adapter openai")
    run.add_argument("--suite", type=Path, help="suite YAML, or a bundled suite by name: default, shapes (default: "
                     "default; shapes for a toy checkpoint, or a server that says it serves one)")
    run.add_argument("--out", type=Path, help="report folder (default: ./reports/<checkpoint>-<timestamp>/ in the current directory)")
    run.add_argument("--adapter", help="adapter profile name or YAML file (default: detected from config.json)")
    run.add_argument(
        "--base",
        type=Path,
        metavar="LLM_DIR",
        help="the LLM a stage-1 (mm_projector.bin) or LoRA output of the original LLaVA repo was trained from",
    )
    run.add_argument(
        "--vision-tower",
        type=Path,
        metavar="DIR",
        help="a local CLIP vision tower for an original LLaVA repo checkpoint (default: its mm_vision_tower, if a local folder)",
    )
    run.add_argument("--template", help="conversation template to ask with (overrides the checkpoint's); see --list-templates")
    run.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when present)")
    run.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bfloat16 on GPU, float32 on CPU")
    run.add_argument("--batch-size", type=int,
                     help="requests per forward pass (default 32 for llava, fewer where a GPU's free memory cannot hold "
                          "their KV caches; 16 for llava_next / llava_onevision)")
    run.add_argument("--junit", type=Path, help="also write a JUnit XML file here")
    run.add_argument("--max-fail", type=int, help="override the suite's gate: prompts allowed to fail")
    run.add_argument("--max-warn", type=int, help="override the suite's gate: prompts allowed to warn")
    run.add_argument(
        "--no-grounding", action="store_true", help="skip the counterfactual and likelihood probes (faster, blind to image-blindness)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar and no table; the exit code and files only")
    from vibes_eval.loaders.openai import add_openai_arguments

    add_openai_arguments(run)  # --base-url, --model, --concurrency, --timeout
    from vibes_eval.guard import add_guard_arguments

    add_guard_arguments(run)  # --baseline, --baseline-any-suite, --summary-md
    from vibes_eval.sweep import add_sweep_arguments

    add_sweep_arguments(run)  # --devices, --shard, --no-prefetch
    return run


def parse_run_args(argv: list[str]):
    """The options of `vibes-eval run` from an argument list that starts with "run" (watch, the pytest plugin)."""
    import argparse

    parser = argparse.ArgumentParser(prog="vibes-eval")
    add_run_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@command  # a UsageError is one line and exit 2 here too (sweep.py calls this in worker processes)
def _one(ckpt: Path | None, args, out: Path, display=None) -> int:
    """Evaluate one checkpoint (None: the server), write its reports, show them; the exit code.

    `display`: a sweep's (run_display.SweepDisplay, or LineRelay in a worker process), which
    draws the stage bars and shows this checkpoint's one-line result; None for one checkpoint.
    """
    spec = spec_from_args(args, ckpt)
    err = _stderr_console()
    suite = resolve_suite(args.suite, spec.checkpoint)  # SuiteError: exit 2, nothing loaded
    problem = guard.suite_problem(args, suite) or check_writable_dir(out) or (args.junit and check_writable_file(args.junit))
    if problem:  # found before any model work, not after it
        raise UsageError(problem)
    quiet = args.quiet or not getattr(args, "progress", True)
    bars = display.bars(quiet) if display else StageBars(err, quiet)
    try:
        sc = evaluate(spec, suite, grounding=not args.no_grounding, max_fail=args.max_fail, max_warn=args.max_warn,
                      progress=bars, loading=display.loading if display else (None if quiet else err.status), tune_malloc=True)
    except EvaluationFailed as e:  # say why in one line, and still write a scorecard that records it
        bars.close()  # before printing: the bars are drawn on stderr
        sc = guard.apply(e.scorecard, args)
        if _write_or_say(sc, out, args.junit, getattr(args, "run_id", None), str(e)):
            say(f"{e} (partial scorecard: {out / 'scorecard.json'})")
        guard.publish(sc, args, out)
        return EXIT_EVAL
    finally:
        bars.close()
    sc = guard.apply(sc, args)
    if not _write_or_say(sc, out, args.junit, getattr(args, "run_id", None)):
        return EXIT_USAGE
    if (len(args.checkpoints) > 1 or getattr(args, "shard", None)) and not args.quiet:  # one line per checkpoint here
        said = " ".join([sc.verdict.status.value, ", ".join(sc.verdict.diagnoses)]).strip()
        line = strip_control(f"{spec.label}: {said} -> {out / 'scorecard.html'}")
        if display:
            display.line(line)
        else:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
    elif not args.quiet:
        from rich.console import Console

        from vibes_eval.render.terminal import render_scorecard

        render_scorecard(sc, Console())
        line = f"wrote {out / 'scorecard.json'} and {out / 'scorecard.html'}" + (f" and {args.junit}" if args.junit else "")
        err.print(strip_control(line), markup=False, highlight=False)
    guard.publish(sc, args, out)
    return sc.verdict.exit_code


def _write_or_say(sc, out: Path, junit: Path | None, run_id: str | None, why: str | None = None) -> bool:
    """Write the report files; on a full disk or a folder gone read-only, say so in one line (False)."""
    try:
        write_reports(sc, out, junit, run_id=run_id)
    except OSError as e:
        first = f"{why}; and " if why else ""
        say(f"{first}{e.filename or out}: cannot write the report: {e.strerror or e} (nothing half-written was left)")
        return False
    return True


def _remote_usage(args) -> None:
    """Raise UsageError when the command line cannot ask a server (OpenAIAdapter.check_spec checks the rest)."""
    if args.adapter not in (None, "openai"):
        raise UsageError(f"--base-url: talks to a server, which needs --adapter openai (not {args.adapter!r})")
    if args.checkpoints:
        raise UsageError("--adapter openai takes no CKPT: the server holds the model (name it with --model)")
    if not args.base_url or not args.model:
        raise UsageError("--adapter openai needs --base-url URL and --model NAME")
    for flag, value in (("--devices", args.devices), ("--shard", args.shard)):
        if value:
            raise UsageError(f"{flag}: not available with --adapter openai (the server decides it)")


def _report_names(ckpts: list[Path]) -> list[str]:
    """One report folder name per checkpoint: its folder's name, `name-2`, `name-3` for a name seen before."""
    seen: set[str] = set()
    out = []
    for ckpt in ckpts:
        base = Path(ckpt).resolve().name or "checkpoint"
        name, k = base, 1
        while name.casefold() in seen:  # case-insensitive: two names must not share a folder on macOS either
            k += 1
            name = f"{base}-{k}"
        seen.add(name.casefold())
        out.append(name)
    return out


@command
def run_command(args) -> int:
    """Run the suite on each checkpoint, one at a time; the exit code is the worst of them.

    Bad flags or a bad suite (a UsageError): one line, exit 2, nothing loaded.
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.run_id = new_run_id()  # one id in every file this command writes
    problem = guard.prepare(args)
    if problem:
        raise UsageError(problem)
    if args.adapter == "openai" or args.base_url:
        _remote_usage(args)
        if args.suite is None:  # a toy behind `vibes-eval serve` is asked the shapes suite, as it would be in-process
            from vibes_eval.loaders.openai import suggested_suite

            named = suggested_suite(args.base_url, args.model, args.timeout)
            if named:
                say(f"the server says model {args.model!r} is asked the bundled {named!r} suite (--suite overrides)")
                args.suite = bundled_suite(named)  # the package's, whatever the current folder holds
        safe = re.sub(r"[^\w.-]+", "-", args.model).strip("-") or "model"
        return _one(None, args, args.out or default_out(safe, stamp))
    if not args.checkpoints:
        raise UsageError("run: give checkpoint folder(s), or --adapter openai --base-url URL --model NAME")
    from vibes_eval.sweep import plan_sweep, run_sweep

    several = len(args.checkpoints) > 1
    base = args.out or default_out("compare" if several else args.checkpoints[0].resolve().name, stamp)
    try:
        plan = plan_sweep(args, base, _report_names(args.checkpoints))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not plan.checkpoints:
        say(f"--shard {args.shard}: no checkpoint falls in this shard")
        return 0
    # one model in memory at a time per process; the next one's weights are read ahead (sweep.py);
    # several checkpoints: one overall bar with an ETA, each one's result line above it (run_display.py)
    display = SweepDisplay(len(plan.checkpoints), _stderr_console()) if len(plan.checkpoints) > 1 and not args.quiet else None
    with display or nullcontext():
        codes = run_sweep(plan.checkpoints, plan.outs, args, lambda ckpt, out: _one(ckpt, args, out, display),
                          devices=plan.devices, prefetch=not args.no_prefetch, entry=_one, display=display)
    if EXIT_USAGE in codes:
        return EXIT_USAGE
    if plan.compare:
        from rich.console import Console

        from vibes_eval.compare import compare_scorecards, load_reports

        written = [o for o in plan.outs if (o / "scorecard.json").is_file()]  # a worker killed mid-checkpoint wrote none
        if len(written) > 1:
            codes.append(compare_scorecards(load_reports(written), base, console=Console(quiet=args.quiet), sources=written))
    elif plan.sharded and not args.quiet:
        _stderr_console().print(f"shard {args.shard}: merge every shard's reports with `vibes-eval compare {base}/*/`")
    return max(codes)
