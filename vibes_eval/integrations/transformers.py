"""`VibesCallback`: the vibes-eval gate inside a `transformers.Trainer` run, on the live model.

    from vibes_eval.integrations.transformers import VibesCallback

    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[VibesCallback(processor, every="save", stop_on=("projector_disconnected",))])

At each trigger (every save, or every N steps) the main process runs the suite on the model
object the Trainer is training (`integrations.live.evaluate_live`: eval mode, inference mode, then
back; nothing reloaded or copied), then:

- logs `vibes/*` (pass_rate, image_gain, cross_match, likelihood, template_fit, counterfactual,
  seconds, and `vibes/diagnosis/<name>` 0/1 for every diagnosis) through `Trainer.log`, so they
  land in `state.log_history` and every `report_to` backend (TensorBoard, W&B, MLflow);
- writes the scorecard to `checkpoint-N/vibes/` (a save) or `OUTPUT_DIR/vibes/step-N/` (a step
  without a checkpoint), or under `out`, and rewrites `OUTPUT_DIR/vibes/trend.html`;
- prints one line; and sets `control.should_training_stop` when a `stop_on` diagnosis appears.

Under several processes the main process evaluates and the others wait at a barrier; the stop
decision is broadcast so every rank stops together. With sharded parameters (DeepSpeed ZeRO-3,
FSDP) the callback does not gather the weights: it says so once and starts `vibes-eval watch
OUTPUT_DIR --every-new` in the background on the main process (it judges each saved checkpoint
from disk). At the end of training the watcher is stopped (SIGTERM; killed if it has not ended
within WATCHER_STOP seconds): `trainer.train()` never waits on it longer than that, and the saved
checkpoints it had not judged yet are named in one line with the command that judges them.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

__all__ = ["WATCHER_STOP", "Check", "VibesCallback"]

WATCHER_STOP = 2.0
"""Seconds the background watcher gets to end after SIGTERM at the end of training (it takes about one); then SIGKILL."""


@dataclass
class Check:
    """One check the callback ran."""

    step: int
    status: str
    diagnoses: list[str]
    report: Path
    seconds: float
    model_id: int
    """id() of the model object that was evaluated (the trainer's own: no copy)."""
    metrics: dict[str, float] = field(default_factory=dict)


def _known_diagnoses() -> tuple[str, ...]:
    from vibes_eval.suite.schema import DIAGNOSES

    return (*DIAGNOSES, "regression")


class VibesCallback(TrainerCallback):
    """Run the vibes-eval suite on the live model during training; see the module docstring.

    Args:
        processor: the model's processor (tokenizer + image processor), as for inference.
        suite: a suite YAML path or a loaded Suite (default: suites/default.yaml).
        every: "save" (after each checkpoint is saved) or N (every N optimizer steps).
        stop_on: diagnoses that stop training (`control.should_training_stop`); () never stops.
        out: report folder root (default: the checkpoint's `vibes/`, or OUTPUT_DIR/vibes/step-N/).
        baseline: a report folder or scorecard.json to judge each check against (`--baseline`).
        baseline_any_suite: allow a baseline that ran another suite.
        template, batch_size, grounding: as `run`'s --template, --batch-size, (not) --no-grounding.
        trainer: the Trainer, when it cannot be found from the callback (a subclass with its own loop).
        log: where the one line per check goes (default: print to stderr).
    """

    def __init__(self, processor, suite=None, every: str | int = "save", stop_on=("projector_disconnected",), out=None, *,
                 baseline=None, baseline_any_suite: bool = False, template: str | None = None, batch_size: int | None = None,
                 grounding: bool = True, trainer=None, log=None):
        from vibes_eval.suite.schema import Suite, load_suite

        if not (every == "save" or (isinstance(every, int) and not isinstance(every, bool) and every > 0)):
            raise ValueError(f"VibesCallback: every must be 'save' or a positive number of steps, not {every!r}")
        stop_on = (stop_on,) if isinstance(stop_on, str) else tuple(stop_on or ())
        unknown = [d for d in stop_on if d not in _known_diagnoses()]
        if unknown:
            raise ValueError(f"VibesCallback: stop_on: unknown diagnosis {unknown[0]!r}; known: {', '.join(_known_diagnoses())}")
        from vibes_eval.resources import bundled_suite

        self.suite = suite if isinstance(suite, Suite) else load_suite(Path(suite) if suite else bundled_suite("default"))
        from vibes_eval.api import load_run_baseline
        from vibes_eval.options import RunOptions

        self.options = RunOptions(baseline=None if baseline is None else Path(baseline), baseline_any_suite=baseline_any_suite,
                                  template=template, batch_size=batch_size, grounding=grounding)
        self.baseline = load_run_baseline(self.options, self.suite)  # a bad one is an error now, not at the first check
        self.options = self.options.replace(baseline_card=self.baseline)  # every check is judged against this one read
        self.processor, self.every, self.stop_on, self.out = processor, every, stop_on, Path(out) if out else None
        self.template, self.batch_size, self.grounding = template, batch_size, grounding
        self.trainer = trainer
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.checks: list[Check] = []
        self._said_no_trainer = False
        self._said: set[str] = set()
        self._watcher: subprocess.Popen | None = None

    # -- Trainer events -----------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None:
            self.trainer = _find_trainer()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if isinstance(self.every, int) and state.global_step % self.every == 0:
            self._trigger(args, state, control, model, saved=False)

    def on_save(self, args, state, control, model=None, **kwargs):
        if self.every == "save":
            self._trigger(args, state, control, model, saved=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self._watcher is not None:
            self._finish_watcher(args)

    # -- a check ------------------------------------------------------------------------------
    def _trigger(self, args, state, control, model, saved: bool) -> None:
        if model is None:
            return
        why = _sharded(args, model)
        if why:
            self._fall_back_to_watch(args, state, why)
            return
        stop = False
        if state.is_world_process_zero:
            check = self._check(args, state, model, saved)
            stop = any(d in self.stop_on for d in check.diagnoses)
            if stop:
                self.log(f"vibes-eval: stopping training at step {state.global_step}: "
                         f"{', '.join(d for d in check.diagnoses if d in self.stop_on)} (stop_on)")
        if _agreed(stop):
            control.should_training_stop = True

    def _report_dir(self, args, step: int, saved: bool) -> Path:
        folder = f"checkpoint-{step}" if saved else f"step-{step}"
        if self.out is not None:
            return self.out / folder
        ckpt = Path(args.output_dir) / f"checkpoint-{step}"
        return ckpt / "vibes" if saved and ckpt.is_dir() else Path(args.output_dir) / "vibes" / folder

    def _check(self, args, state, model, saved: bool) -> Check:
        from vibes_eval.integrations.live import evaluate_live
        from vibes_eval.judge.metrics import metric_values
        from vibes_eval.report.files import write_reports

        step = state.global_step
        sc, used, seconds = evaluate_live(model, self.processor, self.suite, label=f"{args.output_dir} step {step} (live)",
                                          options=self.options)
        report = self._report_dir(args, step, saved)
        write_reports(sc, report)
        self._update_trend(args)
        metrics = {f"vibes/{k}": v for k, v in metric_values(sc).items()}
        metrics.update({f"vibes/diagnosis/{d}": float(d in sc.verdict.diagnoses) for d in _known_diagnoses()})
        metrics["vibes/seconds"] = round(seconds, 3)
        self._log_metrics(state, metrics)
        self._send_answers(args, sc, step, report)
        check = Check(step=step, status=sc.verdict.status.value, diagnoses=list(sc.verdict.diagnoses), report=report,
                      seconds=seconds, model_id=id(used), metrics=metrics)
        self.checks.append(check)
        gain = metrics.get("vibes/image_gain")
        self.log(f"vibes-eval step {step}: {check.status.upper()}"
                 + (f" {', '.join(check.diagnoses)}" if check.diagnoses else "")
                 + (f" · image_gain {gain:.2f}" if gain is not None else "")
                 + f" · {seconds:.1f} s -> {report / 'scorecard.html'}")
        return check

    def _send_answers(self, args, sc, step: int, report: Path) -> None:
        """The answers table with thumbnails and the scorecard to the `report_to` trackers (integrations/trackers.py).

        A tracker whose library is missing, whose run is not active or that fails is one line (said once), never a crash.
        """
        from vibes_eval.integrations.trackers import trainer_trackers

        trainer_trackers(args.report_to, self.trainer, self._say_once).log(sc, step, report / "scorecard.html")

    def _say_once(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            self.log(f"vibes-eval: {line}")

    def _log_metrics(self, state, metrics: dict[str, float]) -> None:
        """Through Trainer.log (log_history and every report_to backend); without a trainer, log_history only."""
        if self.trainer is not None:
            self.trainer.log(dict(metrics))
            return
        if not self._said_no_trainer:
            self.log("vibes-eval: no Trainer found (pass VibesCallback(..., trainer=trainer)): metrics go to log_history only")
            self._said_no_trainer = True
        state.log_history.append({**metrics, "step": state.global_step})

    def _update_trend(self, args) -> None:
        from vibes_eval.report.trend import collect_entries, write_trend

        root = Path(args.output_dir)
        out = self.out or root / "vibes"
        entries = collect_entries(self.out, out) if self.out is not None else collect_entries(root, out)
        write_trend(entries, out, title=str(root))

    # -- sharded parameters: judge the saved checkpoints from disk instead ----------------------
    def _fall_back_to_watch(self, args, state, why: str) -> None:
        if not state.is_world_process_zero or self._watcher is not None:
            return
        self.log(f"vibes-eval: {why}: the live model is not evaluated in the training process (that would gather every "
                 f"weight); `vibes-eval watch {args.output_dir}` judges each saved checkpoint instead")
        if self.trainer is not None and getattr(self.trainer, "processing_class", None) is None:
            self.log("vibes-eval: the Trainer has no processing_class, so its checkpoints carry no processor and cannot be "
                     "loaded: pass Trainer(..., processing_class=processor)")
        self._watcher = subprocess.Popen(self._watch_argv(args, until_idle=None))  # stopped by _finish_watcher

    def _watch_argv(self, args, until_idle: float | None) -> list[str]:
        argv = [sys.executable, "-m", "vibes_eval", "watch", str(args.output_dir), "--every-new", "--poll", "2"]
        if self.suite.file:
            argv += ["--suite", str(self.suite.file)]
        if self.template:
            argv += ["--template", self.template]
        if self.baseline is not None:
            argv += ["--baseline", str(self.baseline[1]), "--baseline-any-suite"]
        if until_idle is not None:
            argv += ["--until-idle", str(until_idle), "--settle", "0"]
        return argv

    def _finish_watcher(self, args) -> None:
        """Stop the background watcher within seconds; name the saved checkpoints it had not judged, and how to judge them.

        SIGTERM, not SIGINT: a training job started in the background of a shell (`nohup python train.py &`)
        passes an ignored SIGINT on to the watcher. A watcher that has not ended WATCHER_STOP seconds later is
        killed, and any temporary report file it left is removed.
        """
        from vibes_eval.cli.watch import Watcher
        from vibes_eval.report.atomic import remove_temporaries

        proc, self._watcher = self._watcher, None
        proc.terminate()
        try:
            proc.wait(timeout=WATCHER_STOP)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=WATCHER_STOP)
            vibes = Path(args.output_dir) / "vibes"
            for folder in [vibes, *vibes.glob("checkpoint-*")]:
                if folder.is_dir():
                    remove_temporaries(folder)
        left = Watcher(Path(args.output_dir), evaluate=lambda ckpt, out: 0, every_new=True, settle=0).waiting()
        if left:
            import shlex

            argv = ["vibes-eval", *self._watch_argv(args, until_idle=0)[3:]]
            self.log(f"vibes-eval: training ended before the watcher judged {', '.join(f.name for _, f in left)}: "
                     f"`{shlex.join(argv)}` judges {'it' if len(left) == 1 else 'them'}")


def _sharded(training_args, model) -> str | None:
    """Why the parameters are not whole on this process (ZeRO-3, FSDP), or None (`training_args`: the TrainingArguments)."""
    try:
        from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

        if is_deepspeed_zero3_enabled():
            return "DeepSpeed ZeRO-3 shards the parameters"
    except ImportError:  # an older transformers without the helper
        pass
    if getattr(training_args, "fsdp", None):
        return "FSDP shards the parameters"
    if any(hasattr(p, "ds_id") for p in list(model.parameters())[:4]):
        return "DeepSpeed ZeRO-3 shards the parameters"
    return None


def _agreed(stop: bool) -> bool:
    """Every rank waits for the main process's check and takes its stop decision (one process: `stop`)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stop
    flag = [stop]
    dist.broadcast_object_list(flag, src=0)  # also the barrier: the other ranks wait here for rank 0's check
    return bool(flag[0])


def _find_trainer():
    """The Trainer running this callback: the `self` of a Trainer method up the call stack (None if there is none)."""
    import inspect

    from transformers import Trainer

    frame = inspect.currentframe()
    for _ in range(12):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Trainer):
            return candidate
        frame = frame.f_back
    return None
