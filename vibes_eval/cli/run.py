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

import vibes_eval.interrupt as interrupt
from vibes_eval.api import evaluate, load_run_baseline, resolve_suite
from vibes_eval.cli.display import StageBars, SweepDisplay
from vibes_eval.errors import EXIT_EVAL, EXIT_OK, EXIT_USAGE, EvaluationFailed, UsageError, command
from vibes_eval.options import RunOptions
from vibes_eval.report.atomic import check_writable_dir, check_writable_file
from vibes_eval.report.files import new_run_id, write_reports  # json + html + junit, atomic, one run id, redacted
from vibes_eval.resources import bundled_suite
from vibes_eval.safety import say, strip_control

__all__ = ["add_baseline_arguments", "add_run_parser", "default_out", "run_checkpoints", "run_command", "run_one"]


def default_out(name: str, stamp: str | None = None) -> Path:
    """`./reports/<name>-<timestamp>/` in the current directory."""
    stamp = stamp or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{name}-{stamp}"


def add_baseline_arguments(parser) -> None:
    """--baseline, --baseline-any-suite, --summary-md (run and watch)."""
    parser.add_argument("--baseline", type=Path, metavar="REPORT",
                        help="an earlier report folder or scorecard.json: a prompt that passed there and fails now, or a "
                             "signal that fell past its tolerance, fails the gate (diagnosis regression)")
    parser.add_argument("--baseline-any-suite", action="store_true",
                        help="compare with a baseline that ran another suite (by default a usage error, exit 2)")
    parser.add_argument("--summary-md", type=Path, metavar="FILE",
                        help="append a Markdown summary (verdict, diagnoses, per-prompt table) to FILE; with "
                             "$GITHUB_STEP_SUMMARY set it is appended there too, with ::error:: annotations")


def add_report_to_argument(parser) -> None:
    """--report-to (run and watch): the trackers, checked for their library before anything loads."""
    parser.add_argument("--report-to", metavar="TRACKERS", default=(),
                        type=lambda v: tuple(n.strip().lower() for n in v.split(",") if n.strip()),
                        help="send each checkpoint's answers with thumbnails, its scorecard and signals to wandb, mlflow "
                             "and/or tensorboard (comma-separated; each needs its extra: pip install 'llava-vibes-eval[wandb]')")


def report_to_trackers(sc, options: RunOptions, ckpt: Path | None, out: Path) -> None:
    """`--report-to`: one tracker run per checkpoint, at the step in its `checkpoint-N` name (integrations/trackers.py)."""
    from vibes_eval.integrations.trackers import cli_trackers, scalar_metrics, step_of

    label = Path(ckpt).resolve().name if ckpt is not None else (options.model or "model")
    trackers = cli_trackers(options.report_to, out, label, {"checkpoint": str(ckpt or options.model), "suite": sc.suite.get("name")},
                            say)
    try:
        trackers.log(sc, step_of(ckpt or ""), out / "scorecard.html", scalar_metrics(sc))
    finally:
        trackers.close()


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
        metavar="DIR",
        help="the model a PEFT adapter applies to (default: its base_model_name_or_path, when a local folder), or the LLM a "
        "stage-1 (mm_projector.bin) or LoRA output of the original LLaVA repo was trained from",
    )
    run.add_argument(
        "--vision-tower",
        type=Path,
        metavar="DIR",
        help="a local CLIP vision tower for an original LLaVA repo checkpoint (default: its mm_vision_tower, if a local folder)",
    )
    run.add_argument("--quantize", choices=["4bit", "8bit"],
                     help="quantize a bf16/fp32 checkpoint on load with bitsandbytes (4bit: NF4 with bf16 compute; 8bit: "
                          "LLM.int8), for a model too big for the GPU in bf16; needs a CUDA GPU and the bitsandbytes package")
    run.add_argument("--trust-remote-code", action="store_true",
                     help="run the checkpoint folder's own modeling code (config.json auto_map; never downloaded; "
                     "its files' sha256 go in the fingerprint)")
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
    from vibes_eval.adapters.openai.model import add_openai_arguments

    add_openai_arguments(run)  # --base-url, --model, --concurrency, --timeout
    add_baseline_arguments(run)  # --baseline, --baseline-any-suite, --summary-md
    add_report_to_argument(run)  # --report-to
    from vibes_eval.sweep.runner import add_sweep_arguments

    add_sweep_arguments(run)  # --devices, --shard, --no-prefetch
    return run


@command  # a UsageError is one line and exit 2 here too (sweep workers call this in their own processes)
def run_one(ckpt: Path | None, options: RunOptions, out: Path, display=None, *, bars: bool = True, line: bool = False) -> int:
    """Evaluate one checkpoint (None: the server), write its reports, show them; the exit code.

    The step every way of running shares: `run` (one checkpoint or a sweep, in this process or a
    worker), `watch` and the `vibes` pytest fixture. `display`: a sweep's (cli.display.SweepDisplay,
    or LineRelay in a worker process), which draws the stage bars and shows this checkpoint's
    one-line result; None for one checkpoint. `bars=False`: no stage bars (a worker process);
    `line=True`: one result line on stderr instead of the scorecard table (a shard of one).
    """
    err = _stderr_console()
    suite = resolve_suite(options.suite, ckpt)  # SuiteError: exit 2, nothing loaded
    load_run_baseline(options, suite)  # a baseline of another suite: exit 2 before any folder is made
    problem = check_writable_dir(out) or (options.junit and check_writable_file(options.junit))
    if problem:  # found before any model work, not after it
        raise UsageError(problem)
    quiet = options.quiet or not bars
    stage = display.bars(quiet) if display else StageBars(err, quiet)
    spec = options.spec(ckpt)
    try:
        sc = evaluate(spec, suite, options, progress=stage, loading=display.loading if display else (None if quiet else err.status),
                      tune_malloc=True)
    except EvaluationFailed as e:  # say why in one line, and still write a scorecard that records it
        stage.close()  # before printing: the bars are drawn on stderr
        sc = e.scorecard
        if _write_or_say(sc, out, options.junit, options.run_id, str(e)):
            say(f"{e} (partial scorecard: {out / 'scorecard.json'})")
        _publish(sc, options, out)
        return EXIT_EVAL
    finally:
        stage.close()
    if not _write_or_say(sc, out, options.junit, options.run_id):
        return EXIT_USAGE
    if (display is not None or line) and not options.quiet:  # a sweep: one line per checkpoint
        said = " ".join([sc.verdict.status.value, ", ".join(sc.verdict.diagnoses)]).strip()
        text = strip_control(f"{spec.label}: {said} -> {out / 'scorecard.html'}")
        if display is not None:
            display.line(text)
        else:
            err.print(text, markup=False, highlight=False, soft_wrap=True)
    elif not options.quiet:
        from rich.console import Console

        from vibes_eval.report.terminal import render_scorecard

        render_scorecard(sc, Console())
        line = f"wrote {out / 'scorecard.json'} and {out / 'scorecard.html'}" + (f" and {options.junit}" if options.junit else "")
        err.print(strip_control(line), markup=False, highlight=False)
    _publish(sc, options, out)
    if options.report_to:
        report_to_trackers(sc, options, ckpt, out)
    return sc.verdict.exit_code


def _publish(sc, options: RunOptions, out: Path | None) -> None:
    """After the reports are written: the before/after table (unless quiet) and the CI summaries."""
    if sc.baseline is not None and not options.quiet:
        from rich.console import Console

        from vibes_eval.report.terminal import render_baseline

        render_baseline(sc.baseline, Console())
    from vibes_eval.report.summary import emit_summaries

    emit_summaries(sc, options.summary_md, report=(out / "scorecard.html") if out else None)


def _write_or_say(sc, out: Path, junit: Path | None, run_id: str | None, why: str | None = None) -> bool:
    """Write the report files; on a full disk or a folder gone read-only, say so in one line (False).

    Nothing is written after a stop was asked for (a Ctrl-C a library swallowed): the earlier report stays.
    """
    interrupt.raise_if_stopped()
    try:
        write_reports(sc, out, junit, run_id=run_id)
    except OSError as e:
        first = f"{why}; and " if why else ""
        say(f"{first}{e.filename or out}: cannot write the report: {e.strerror or e} (nothing half-written was left)")
        return False
    return True


def _remote_usage(checkpoints: list[Path], options: RunOptions) -> None:
    """Raise UsageError when the command line cannot ask a server (OpenAIAdapter.check_spec checks the rest)."""
    if options.adapter not in (None, "openai", "sglang"):
        raise UsageError(f"--base-url: talks to a server, which needs --adapter openai or sglang (not {options.adapter!r})")
    name = options.adapter or "openai"
    if checkpoints:
        raise UsageError(f"--adapter {name} takes no CKPT: the server holds the model (name it with --model)")
    if not options.base_url or not options.model:
        raise UsageError(f"--adapter {name} needs --base-url URL and --model NAME")
    for flag, value in (("--devices", options.devices), ("--shard", options.shard)):
        if value:
            raise UsageError(f"{flag}: not available with --adapter {name} (the server decides it)")


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
    """`vibes-eval run`: the options read once from the command line, then `run_checkpoints`."""
    return run_checkpoints(list(args.checkpoints), RunOptions.from_args(args))


def run_checkpoints(checkpoints: list[Path], options: RunOptions) -> int:
    """Run the suite on each checkpoint, one at a time (or one worker per device); the worst exit code.

    Bad flags or a bad suite or baseline (a UsageError): one line, exit 2, nothing loaded.
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    options = options.replace(run_id=options.run_id or new_run_id())  # one id in every file this command writes
    if options.report_to:  # a missing tracker library is exit 2 in one line, before anything loads
        from vibes_eval.integrations.trackers import parse_report_to

        parse_report_to(",".join(options.report_to))
    # read once (exit 2 before anything loads): every checkpoint is compared with this report, even one the sweep rewrites
    options = options.replace(baseline_card=load_run_baseline(options))
    if options.remote:
        _remote_usage(checkpoints, options)
        if options.adapter is None:  # --base-url alone: SGLang's native API where the server is SGLang
            from vibes_eval.adapters.openai.model import server_owner

            if server_owner(options.base_url, options.model, options.timeout) == "sglang":
                say("the server is SGLang: asking its native /generate (answers and likelihoods with the image; "
                    "--adapter openai asks its chat completions instead)")
                options = options.replace(adapter="sglang")
        if options.suite is None:  # a toy behind `vibes-eval serve` is asked the shapes suite, as it would be in-process
            from vibes_eval.adapters.openai.model import suggested_suite

            named = suggested_suite(options.base_url, options.model, options.timeout)
            if named:
                say(f"the server says model {options.model!r} is asked the bundled {named!r} suite (--suite overrides)")
                options = options.replace(suite=bundled_suite(named))  # the package's, whatever the current folder holds
        safe = re.sub(r"[^\w.-]+", "-", options.model).strip("-") or "model"
        return run_one(None, options, options.out or default_out(safe, stamp))
    if not checkpoints:
        raise UsageError("run: give checkpoint folder(s), or --adapter openai --base-url URL --model NAME")
    from vibes_eval.sweep.runner import plan_sweep, run_sweep

    several = len(checkpoints) > 1
    base = options.out or default_out("compare" if several else checkpoints[0].resolve().name, stamp)
    try:
        plan = plan_sweep(checkpoints, options, base, _report_names(checkpoints))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not plan.checkpoints:
        say(f"--shard {options.shard}: no checkpoint falls in this shard")
        return EXIT_OK
    # one model in memory at a time per process; the next one's weights are read ahead (sweep.runner);
    # several checkpoints: one overall bar with an ETA, each one's result line above it (cli.display)
    many = len(plan.checkpoints) > 1 or plan.sharded
    display = SweepDisplay(len(plan.checkpoints), _stderr_console()) if len(plan.checkpoints) > 1 and not options.quiet else None
    with display or nullcontext():
        codes = run_sweep(plan.checkpoints, plan.outs, options, lambda ckpt, out, opts: run_one(ckpt, opts, out, display, line=many),
                          devices=plan.devices, entry=run_one, display=display)
    if EXIT_USAGE in codes:
        return EXIT_USAGE
    if plan.compare:
        from rich.console import Console

        from vibes_eval.cli.compare import compare_scorecards
        from vibes_eval.report.compare import load_reports

        written = [o for o in plan.outs if (o / "scorecard.json").is_file()]  # a worker killed mid-checkpoint wrote none
        if len(written) > 1:
            codes.append(compare_scorecards(load_reports(written), base, console=Console(quiet=options.quiet), sources=written))
    elif plan.sharded and not options.quiet:
        _stderr_console().print(f"shard {options.shard}: merge every shard's reports with `vibes-eval compare {base}/*/`")
    return max(codes)
