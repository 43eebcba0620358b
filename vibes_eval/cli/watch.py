"""`vibes-eval watch OUTPUT_DIR`: judge each checkpoint a training run writes, as it appears; `vibes-eval trend DIR`.

Any trainer works (the HF Trainer, the original LLaVA repo's scripts): the watcher polls
OUTPUT_DIR for `checkpoint-N` folders and runs the suite on each complete one once, in step
order, exactly as `vibes-eval run` would (a HF checkpoint, an original-layout stage-1 folder
with `mm_projector.bin` given `--base`, a LoRA folder). Each step's report goes to
`OUTPUT_DIR/vibes/checkpoint-N/`; after each, `OUTPUT_DIR/vibes/trend.json` and `trend.html`
are rewritten. The exit code is the worst verdict seen (3 > 1 > 0), so `watch` can end a CI job.

A folder is complete when it has `trainer_state.json` (the HF Trainer writes it last), or else
when it holds a weight file and nothing in it changed for `--settle` seconds. `tmp-checkpoint-N`
staging folders are never complete. By default, when several checkpoints are waiting (the trainer
saves faster than a check runs) only the newest is judged and the older ones are passed over;
`--every-new` judges every one in order. Steps already in trend.json are not judged again, so a
restarted watcher resumes.
"""

from __future__ import annotations

import gc
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import vibes_eval.interrupt as interrupt
from vibes_eval.errors import EXIT_USAGE, Terminated, UsageError, exit_code_for
from vibes_eval.options import RunOptions

__all__ = ["Watcher", "add_watch_parsers", "complete", "trend_command", "watch_command"]

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")
_FILES_LOOKED_AT = 10_000


def complete(folder: Path, settle: float, now: float | None = None) -> bool:
    """Whether a checkpoint folder is finished (see the module docstring)."""
    if (folder / "trainer_state.json").is_file():
        return True
    newest, weights = 0.0, False
    for n, f in enumerate(folder.rglob("*")):
        if n >= _FILES_LOOKED_AT:
            return False
        try:
            st = f.stat()
        except OSError:  # deleted while we look: not finished
            return False
        newest = max(newest, st.st_mtime)
        weights = weights or (f.suffix in _WEIGHTS and st.st_size > 0)
    return weights and (now if now is not None else time.time()) - newest >= settle


class Watcher:
    """Find the complete checkpoint-N folders of `root` not yet judged, and judge them with `evaluate`.

    Args:
        root: the training run's output folder.
        evaluate: evaluate(checkpoint_folder, report_folder) -> exit code; writes report_folder/scorecard.json.
        every_new: judge every waiting checkpoint in order (default: only the newest of those waiting).
        settle: seconds without a change after which a folder without trainer_state.json counts as complete.
        log: one line per check.
    """

    def __init__(self, root: Path, evaluate: Callable[[Path, Path], int], *, every_new: bool = False,
                 settle: float = 10.0, log: Callable[[str], None] = print):
        from vibes_eval.report.trend import read_trend

        self.root, self.evaluate, self.every_new, self.settle, self.log = Path(root), evaluate, every_new, settle, log
        self.out = self.root / "vibes"
        old = read_trend(self.out / "trend.json")
        self.done: set[int] = {e["step"] for e in old if isinstance(e, dict) and isinstance(e.get("step"), int)}
        self.interrupted: KeyboardInterrupt | None = None
        """The Ctrl-C (KeyboardInterrupt) or SIGTERM (Terminated) that ended `run`, if one did."""
        self.worst = max((e.get("exit_code", 0) for e in old if isinstance(e, dict) and isinstance(e.get("exit_code"), int)),
                         default=0)

    def waiting(self) -> list[tuple[int, Path]]:
        """Complete checkpoints not judged yet, by step; only the newest unless every_new."""
        if not self.root.is_dir():
            return []
        found = []
        for d in self.root.iterdir():
            m = CHECKPOINT.match(d.name)
            if m and d.is_dir() and int(m.group(1)) not in self.done and complete(d, self.settle):
                found.append((int(m.group(1)), d))
        found.sort()
        if not self.every_new:
            last = max(self.done, default=-1)
            found = [f for f in found if f[0] > last][-1:]
        return found

    def check(self, step: int, folder: Path) -> int:
        """Judge one checkpoint, record it, rewrite the trend; return its exit code."""
        from vibes_eval.report.trend import collect_entries, write_trend

        t0 = time.perf_counter()
        try:
            code = self.evaluate(folder, self.out / folder.name)
        except Exception as e:  # noqa: BLE001 - one checkpoint's crash must not end the watch: exit 3 for it, say why
            interrupt.raise_if_stopped()  # a Ctrl-C swallowed inside the load: an interrupt, not this checkpoint's error
            code = 3
            self.log(f"vibes-eval watch: step {step} ({folder.name}): could not be evaluated: {type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''}")
        gc.collect()  # the model just judged sits in reference cycles: freed now, not when the collector happens to run
        interrupt.raise_if_stopped()  # judged after a stop was asked for: not recorded (a restarted watcher judges it)
        self.done.add(step)
        self.worst = max(self.worst, code)
        entries = collect_entries(self.root)
        write_trend(entries, self.out, title=str(self.root))
        e = next((e for e in entries if e["step"] == step), None)
        what = f"{e['status'].upper()} {', '.join(e['diagnoses']) or ''}".strip() if e else f"exit {code}, no scorecard"
        self.log(f"vibes-eval watch: step {step} ({folder.name}): {what} ({time.perf_counter() - t0:.1f} s) "
                 f"-> {self.out / folder.name / 'scorecard.html'}")
        return code

    def run(self, until_idle: float | None = None, poll: float = 5.0) -> int:
        """Judge checkpoints as they appear until `until_idle` seconds pass with none (None: until Ctrl-C).

        Returns the worst exit code seen, or 130 / 143 after Ctrl-C / SIGTERM (`interrupted` holds which).
        """
        idle_since = time.monotonic()
        try:
            while True:
                interrupt.raise_if_stopped()
                todo = self.waiting()
                for step, folder in todo:
                    self.check(step, folder)
                if todo:
                    idle_since = time.monotonic()
                elif until_idle is not None and time.monotonic() - idle_since >= until_idle:
                    break
                else:  # a sleep that ends with a stop, even one a library swallowed
                    interrupt.wait(poll if until_idle is None else max(0.0, min(poll, until_idle - (time.monotonic() - idle_since))))
        except KeyboardInterrupt as e:
            self.interrupted = e
            self.log(f"vibes-eval watch: {'terminated' if isinstance(e, Terminated) else 'interrupted'}")
            return exit_code_for(e)
        return self.worst


def _run_evaluator(options: RunOptions, trackers=None) -> Callable[[Path, Path], int]:
    """evaluate(ckpt, out): what `vibes-eval run CKPT --out OUT --quiet` does, with watch's options.

    `trackers` (`--report-to`): one tracker run for the whole watch, each checkpoint logged at its step.
    """
    from vibes_eval.api import load_run_baseline
    from vibes_eval.cli.run import run_one

    options = options.replace(quiet=True, report_to=())
    options = options.replace(baseline_card=load_run_baseline(options))  # read once: a bad one is exit 2 before the first step

    def evaluate(ckpt: Path, out: Path) -> int:
        code = run_one(ckpt, options, out)
        if trackers is not None and (out / "scorecard.json").is_file():
            from vibes_eval.integrations.trackers import scalar_metrics, step_of
            from vibes_eval.records import load_scorecard

            sc = load_scorecard(out)
            trackers.log(sc, step_of(ckpt), out / "scorecard.html", scalar_metrics(sc))
        return code

    return evaluate


def watch_command(args) -> int:
    """`vibes-eval watch`: the worst exit code seen; 2 on bad usage; 130 / 143 when stopped by Ctrl-C / SIGTERM."""
    if args.until_idle is not None and args.until_idle < 0 or args.settle < 0 or args.poll <= 0:
        print("vibes-eval: watch: --until-idle and --settle must be >= 0, --poll > 0", file=sys.stderr)
        return EXIT_USAGE
    if args.output_dir.exists() and not args.output_dir.is_dir():
        print(f"vibes-eval: watch: {args.output_dir}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions.from_args(args)
    trackers = None
    if options.report_to:
        from vibes_eval.integrations.trackers import cli_trackers, parse_report_to
        from vibes_eval.safety import say

        try:
            names = parse_report_to(",".join(options.report_to))
        except UsageError as e:
            print(f"vibes-eval: {e}", file=sys.stderr)
            return EXIT_USAGE
        trackers = cli_trackers(names, args.output_dir / "vibes", args.output_dir.resolve().name, {"output_dir": str(args.output_dir)}, say)
    watcher = Watcher(args.output_dir, _run_evaluator(options, trackers), every_new=args.every_new, settle=args.settle,
                      log=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        code = watcher.run(until_idle=args.until_idle, poll=args.poll)
    finally:
        if trackers is not None:
            trackers.close()
    print(f"vibes-eval watch: {len(watcher.done)} steps judged, worst exit code {watcher.worst}; trend: {watcher.out / 'trend.html'}",
          file=sys.stderr)
    if watcher.interrupted is not None:
        interrupt.said()  # the watchdog does not say it again
    return code


def trend_command(args) -> int:
    """`vibes-eval trend DIR`: trend.json + trend.html from saved scorecards (no torch); the worst exit code."""
    from vibes_eval.report.trend import collect_entries, write_trend

    root = args.dir
    if not root.is_dir():
        print(f"vibes-eval: trend: {root}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or root / "vibes"
    entries = collect_entries(root, out)
    if not entries:
        print(f"vibes-eval: trend: {root}: no scorecards in checkpoint-N/vibes/ or vibes/checkpoint-N/", file=sys.stderr)
        return EXIT_USAGE
    json_path, html_path = write_trend(entries, out, title=str(root))
    worst = max(e.get("exit_code", 0) for e in entries)
    print(f"{len(entries)} steps, worst exit code {worst}: {json_path} and {html_path}")
    return worst


def add_watch_parsers(sub) -> None:
    """The `watch` and `trend` subcommands."""
    from vibes_eval.cli.run import add_baseline_arguments, add_report_to_argument

    w = sub.add_parser("watch", help="judge each new checkpoint-N of a training run as it appears; trend.json + trend.html")
    w.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="the trainer's output folder (checkpoint-N folders appear in it)")
    w.add_argument("--suite", type=Path, help="suite YAML (default: as `run` picks it for each checkpoint)")
    w.add_argument("--every-new", action="store_true", help="judge every new checkpoint in order (default: only the newest waiting)")
    w.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop when no new checkpoint appeared for SECONDS (0: judge what is there and stop; default: until Ctrl-C)")
    w.add_argument("--settle", type=float, default=10.0, metavar="SECONDS",
                   help="a folder without trainer_state.json is complete once unchanged this long (default 10)")
    w.add_argument("--poll", type=float, default=5.0, metavar="SECONDS", help="how often to look (default 5)")
    w.add_argument("--base", type=Path, metavar="DIR",
                   help="the model PEFT adapter checkpoints apply to, or the LLM original-repo stage-1 / LoRA checkpoints "
                   "were trained from")
    w.add_argument("--vision-tower", type=Path, metavar="DIR", help="a local CLIP vision tower for original LLaVA repo checkpoints")
    w.add_argument("--template", help="conversation template to ask with")
    w.add_argument("--device", help="cuda, cuda:1, cpu")
    w.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    add_baseline_arguments(w)
    add_report_to_argument(w)
    t = sub.add_parser("trend", help="trend.json + trend.html of a training run from its saved scorecards (no torch)")
    t.add_argument("dir", metavar="DIR", type=Path, help="the training output folder (or any folder with checkpoint-N reports)")
    t.add_argument("--out", type=Path, help="where trend.json and trend.html go (default DIR/vibes/)")
