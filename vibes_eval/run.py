"""`vibes-eval run`: suite + checkpoint(s) -> scorecard files, terminal table, exit code.

Bad usage or suite: one line, exit 2, nothing loaded. A checkpoint that cannot be evaluated:
one line, exit 3, and a scorecard that says so is still written (with whatever was computed).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import warnings
from pathlib import Path

from vibes_eval import guard
from vibes_eval.loaders.detect import PROFILE_DIR, CheckpointError, detect
from vibes_eval.records import Scorecard, Status, Verdict
from vibes_eval.safety import say, strip_control, url_without_userinfo
from vibes_eval.atomic import check_writable_dir, check_writable_file
from vibes_eval.render.reports import new_run_id, write_reports  # json + html + junit, atomic, one run id, redacted
from vibes_eval.suite import SuiteError, load_suite
from vibes_eval.verdict import EXIT_EVAL, load_error_verdict

__all__ = ["default_suite", "run_command", "write_reports"]

REPO = PROFILE_DIR.parent
EXIT_USAGE = 2


def default_suite(ckpt: Path) -> Path:
    """suites/shapes.yaml for a toy checkpoint (it carries the toy marker), else suites/default.yaml."""
    from vibes_eval.toy.factory import TOY_MARKER

    name = "shapes.yaml" if (Path(ckpt) / TOY_MARKER).is_file() else "default.yaml"
    return REPO / "suites" / name


def _write_error(ckpt: Path, suite, verdict: Verdict, out: Path, junit: Path | None, args=None) -> None:
    """Say why in one line (naming the scorecard that records it), and still write that scorecard."""
    sc = Scorecard(checkpoint=str(ckpt), suite={"name": suite.name, "path": str(suite.file), "sha256": suite.sha256},
                   fingerprint={}, prompts=[], verdict=verdict,
                   created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    sc = guard.apply(sc, args)
    if _write_or_say(sc, out, junit, getattr(args, "run_id", None), verdict.summary[0]):
        say(f"{verdict.summary[0]} (partial scorecard: {out / 'scorecard.json'})")
    guard.publish(sc, args, out)


def _write_or_say(sc: Scorecard, out: Path, junit: Path | None, run_id: str | None, why: str | None = None) -> bool:
    """Write the report files; on a full disk or a folder gone read-only, say so in one line (False)."""
    try:
        write_reports(sc, out, junit, run_id=run_id)
    except OSError as e:
        first = f"{why}; and " if why else ""
        say(f"{first}{e.filename or out}: cannot write the report: {e.strerror or e} (nothing half-written was left)")
        return False
    return True


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _one(ckpt: Path | str, args, out: Path, remote: bool = False) -> int:
    err = _stderr_console()
    suite_path = args.suite or (REPO / "suites" / "default.yaml" if remote else default_suite(ckpt))
    try:
        suite = load_suite(suite_path)
    except SuiteError as e:
        say(str(e))
        return EXIT_USAGE
    problem = guard.suite_problem(args, suite) or check_writable_dir(out) or (args.junit and check_writable_file(args.junit))
    if problem:  # found before any model work, not after it
        say(problem)
        return EXIT_USAGE
    gate = suite.gate.model_copy(update={k: v for k, v in (("max_fail", args.max_fail), ("max_warn", args.max_warn)) if v is not None})

    def failed(message: str) -> int:
        _write_error(ckpt, suite, load_error_verdict(message), out, args.junit, args)
        return EXIT_EVAL

    if remote:
        adapter = _remote_adapter(args, err)
        if isinstance(adapter, str):
            return failed(adapter)
        return _finish(_run_with_progress(suite, adapter, ckpt, gate, args, err, out), ckpt, args, err, out)
    try:
        profile = detect(ckpt, args.adapter)
    except ValueError as e:  # an unknown --adapter is a usage error, not the checkpoint's fault
        say(str(e))
        return EXIT_USAGE
    except CheckpointError as e:
        return failed(str(e))
    problem = _token_problem(suite, ckpt)
    if problem:
        say(problem)
        return EXIT_USAGE
    if args.template:
        from vibes_eval.templates import TEMPLATES

        if args.template not in TEMPLATES:
            print(f"vibes-eval: --template: unknown template {args.template!r}; known: {', '.join(TEMPLATES)}", file=sys.stderr)
            return EXIT_USAGE

    if (args.base or args.vision_tower) and profile.loader != "llava_repo":
        print(f"vibes-eval: --base/--vision-tower: only for original LLaVA repo checkpoints; {ckpt} is {profile.name}", file=sys.stderr)
        return EXIT_USAGE
    common = {"device": args.device, "dtype": args.dtype, "template": args.template, "batch_size": args.batch_size}
    with err.status(f"loading {ckpt} ({profile.name})"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's and transformers' loading warnings: the one line below says what matters
        try:
            if profile.loader == "llava_repo":
                from vibes_eval.loaders.llava_repo import LlavaRepoAdapter

                adapter = LlavaRepoAdapter(ckpt, profile, base=args.base, vision_tower=args.vision_tower, **common)
            else:
                from vibes_eval.loaders.hf import HFAdapter

                adapter = HFAdapter(ckpt, profile, **common)
        except CheckpointError as e:
            return failed(str(e))
        except Exception as e:  # noqa: BLE001 - whatever the loader raised (a pickle torch refuses, a missing
            # package): one line naming it and what to do, exit 3, never a traceback
            from vibes_eval.loaders.failures import load_failure

            return failed(load_failure(ckpt, e))
        if adapter.device == "cpu":  # this process only runs the model: keep freed tensor memory for reuse
            from vibes_eval.loaders.hf import tune_cpu_malloc

            tune_cpu_malloc()
    return _finish(_run_with_progress(suite, adapter, ckpt, gate, args, err, out), ckpt, args, err, out)


def _token_problem(suite, ckpt) -> str | None:
    """The suite's max_new_tokens above the checkpoint's context (config.json), in one line; else None."""
    from vibes_eval.loaders.detect import read_config
    from vibes_eval.loaders.sanity import context_length

    found = context_length(read_config(ckpt))
    return suite.token_problem(found[0], f"the checkpoint's context ({found[1]})") if found else None


def _remote_adapter(args, err):
    """The OpenAIAdapter for --base-url/--model, or the one-line reason it cannot reach the server."""
    from vibes_eval.loaders.detect import profiles
    from vibes_eval.loaders.openai import OpenAIAdapter

    with err.status(f"connecting to {url_without_userinfo(args.base_url)} ({args.model})"):
        try:
            return OpenAIAdapter(args.base_url, args.model, profiles().get("openai"),
                                 concurrency=args.concurrency, timeout=args.timeout)
        except CheckpointError as e:
            return str(e)


def _finish(sc, ckpt, args, err, out) -> int:
    if sc is None:
        return EXIT_EVAL
    sc = guard.apply(sc, args)
    if not _write_or_say(sc, out, args.junit, getattr(args, "run_id", None)):
        return EXIT_USAGE
    if (len(args.checkpoints) > 1 or getattr(args, "shard", None)) and not args.quiet:  # one line per checkpoint here
        err.print(strip_control(f"{ckpt}: {sc.verdict.status.value} {', '.join(sc.verdict.diagnoses)} -> {out / 'scorecard.html'}"),
                  markup=False, highlight=False)
    elif not args.quiet:
        from rich.console import Console

        from vibes_eval.render.terminal import render_scorecard

        render_scorecard(sc, Console())
        err.print(strip_control(f"wrote {out / 'scorecard.json'} and {out / 'scorecard.html'}" + (f" and {args.junit}" if args.junit else "")),
                  markup=False, highlight=False)
    guard.publish(sc, args, out)
    return sc.verdict.exit_code


def _run_with_progress(suite, adapter, ckpt, gate, args, err, out):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vibes_eval.runner import run_suite

    suite_gated = suite.model_copy(update={"gate": gate})  # private attrs (root, file, sha256) are copied too
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=args.quiet or not getattr(args, "progress", True), transient=True) as bar:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        try:
            return run_suite(suite_gated, adapter, checkpoint=str(ckpt), grounding_probes=not args.no_grounding, progress=tick)
        except Exception as e:  # an internal failure: one line, and a scorecard that says we could not evaluate
            msg = f"{ckpt}: evaluation failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            _write_error(ckpt, suite, Verdict(status=Status.ERROR, summary=[msg], exit_code=EXIT_EVAL), out, args.junit, args)
            return None


def _remote_usage(args) -> str | None:
    """Why `run --adapter openai` cannot start (a usage error), or None."""
    from vibes_eval.loaders.openai import api_root

    if args.adapter not in (None, "openai"):
        return f"--base-url: talks to a server, which needs --adapter openai (not {args.adapter!r})"
    if args.checkpoints:
        return "--adapter openai takes no CKPT: the server holds the model (name it with --model)"
    if not args.base_url or not args.model:
        return "--adapter openai needs --base-url URL and --model NAME"
    for flag, value in (("--template", args.template), ("--device", args.device), ("--dtype", args.dtype),
                        ("--devices", args.devices), ("--shard", args.shard)):
        if value:
            return f"{flag}: not available with --adapter openai (the server decides it)"
    if args.concurrency < 1 or args.timeout <= 0:
        return "--concurrency and --timeout must be positive"
    try:
        api_root(args.base_url)
    except ValueError as e:
        return str(e)
    return None


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


def run_command(args) -> int:
    """Run the suite on each checkpoint, one at a time; the exit code is the worst of them."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.run_id = new_run_id()  # one id in every file this command writes
    problem = guard.prepare(args)
    if problem:
        say(problem)
        return EXIT_USAGE
    if args.adapter == "openai" or args.base_url:
        problem = _remote_usage(args)
        if problem:
            say(problem)
            return EXIT_USAGE
        safe = re.sub(r"[^\w.-]+", "-", args.model).strip("-") or "model"
        return _one(f"{args.model} at {url_without_userinfo(args.base_url)}", args, args.out or (REPO / "reports" / f"{safe}-{stamp}"), remote=True)
    if not args.checkpoints:
        print("vibes-eval: run: give checkpoint folder(s), or --adapter openai --base-url URL --model NAME", file=sys.stderr)
        return EXIT_USAGE
    from vibes_eval.sweep import plan_sweep, run_sweep

    several = len(args.checkpoints) > 1
    base = args.out or (REPO / "reports" / (f"compare-{stamp}" if several else f"{args.checkpoints[0].resolve().name}-{stamp}"))
    try:
        plan = plan_sweep(args, base, _report_names(args.checkpoints))
    except ValueError as e:
        print(f"vibes-eval: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not plan.checkpoints:
        print(f"vibes-eval: --shard {args.shard}: no checkpoint falls in this shard", file=sys.stderr)
        return 0
    # one model in memory at a time per process; the next one's weights are read ahead (sweep.py)
    codes = run_sweep(plan.checkpoints, plan.outs, args, lambda ckpt, out: _one(ckpt, args, out), devices=plan.devices,
                      prefetch=not args.no_prefetch)
    if EXIT_USAGE in codes:
        return EXIT_USAGE
    written = [o for o in plan.outs if (o / "scorecard.json").is_file()]  # a worker that died wrote none
    if plan.compare and len(written) > 1:
        from vibes_eval.compare import compare_scorecards, load_reports
        from rich.console import Console

        codes.append(compare_scorecards(load_reports(written), base, console=Console(quiet=args.quiet), sources=written))
    elif plan.sharded and not args.quiet:
        _stderr_console().print(f"shard {args.shard}: merge every shard's reports with `vibes-eval compare {base}/*/`")
    return max(codes)
