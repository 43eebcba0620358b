"""Answers and images in the experiment trackers: W&B, MLflow, TensorBoard (optional extras).

What people look at while a VLM fine-tunes is the model's answers next to the images, step after
step. For every judged step (the Trainer callback, `watch`) and every `run --report-to ...`, each
active tracker gets, at the training step:

- a table: step, prompt, image (a thumbnail), question, answer, blank-image and swapped-image
  answers, status and reason (W&B: a `wandb.Table` with `wandb.Image` cells; MLflow: the table as
  `vibes/step-N/answers.json` in `log_table`'s column/data layout, its thumbnails as
  `vibes/step-N/images/<prompt>.png`; TensorBoard: a Markdown table as text and one image per prompt);
- the scorecard (W&B: a `wandb.Html` panel; MLflow: `vibes/step-N/scorecard.html`; TensorBoard:
  the Markdown summary as text, and `scorecard.html` copied to `LOGDIR/vibes/step-N/`).

Each library is used through its own API and only when it is installed and its run is active;
inside a training run a missing library, an inactive run or a tracker's error is one line, never
a crash. The scalars (`vibes/*`) reach the Trainer's backends through `Trainer.log` as before;
`run`/`watch --report-to` log them here.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibes_eval.errors import UsageError
from vibes_eval.records import Scorecard, Status

__all__ = ["COLUMNS", "TRACKERS", "AnswerRow", "Trackers", "answer_rows", "cli_trackers", "parse_report_to", "scalar_metrics",
           "step_of", "trainer_trackers"]

TRACKERS = ("wandb", "mlflow", "tensorboard")
"""The names `--report-to` takes (as the Trainer's `report_to` spells them)."""
_MODULE = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tensorboard"}
_DIST = "llava-vibes-eval"
COLUMNS = ("step", "prompt", "image", "question", "answer", "blank_image_answer", "swapped_image_answer", "status", "reason")
_CELL = 2_000  # characters of one answer kept in a tracker's table


@dataclass(frozen=True)
class AnswerRow:
    """One prompt of one judged step, as a tracker's table shows it."""

    step: int
    prompt: str
    image_path: str
    question: str
    answer: str
    blank: str
    swap: str
    status: str
    reason: str

    def cells(self, image: Any) -> list[Any]:
        return [self.step, self.prompt, image, self.question, self.answer, self.blank, self.swap, self.status, self.reason]


def _short(text: str | None) -> str:
    from vibes_eval.safety import redact, strip_control

    text = strip_control(redact(text or ""), newlines=False)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def answer_rows(sc: Scorecard, step: int) -> list[AnswerRow]:
    """The scorecard's prompts as table rows: answers redacted and bounded, the reason from the failing signals."""
    rows = []
    for p in sc.prompts:
        why = "; ".join(f"{s.probe}: {s.reason}" for s in p.signals if s.status in (Status.WARN, Status.FAIL, Status.ERROR))
        rows.append(AnswerRow(step, p.id, p.image_path, _short(p.question),
                              "(no answer)" if p.answer is None else _short(p.answer),
                              _short(p.variants.get("blank")), _short(p.variants.get("swap")),
                              p.status.value, _short(p.error or why)))
    return rows


def _thumb(path: str):
    """A PIL thumbnail of a prompt's image, or None (a missing image leaves the cell empty)."""
    from vibes_eval.report.thumbs import thumbnail_image

    return thumbnail_image(path)[0]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "prompt"


# -- the backends ---------------------------------------------------------------------------------


class _Wandb:
    name = "wandb"

    def __init__(self, run, step_key: str | None, own: bool):
        self.run, self.step_key, self.own = run, step_key, own

    def log(self, sc: Scorecard, step: int, html: Path, metrics: dict[str, float]) -> None:
        import wandb

        rows = answer_rows(sc, step)
        table = wandb.Table(columns=list(COLUMNS), data=[
            r.cells(wandb.Image(im) if (im := _thumb(r.image_path)) is not None else None) for r in rows])
        data: dict[str, Any] = {"vibes/answers": table, "vibes/scorecard": wandb.Html(html.read_text(encoding="utf-8")),
                                **({} if self.step_key else metrics)}
        if self.step_key:  # the Trainer's W&B run: its step axis is train/global_step (WandbCallback's define_metric)
            self.run.log({**data, self.step_key: step})
        else:
            self.run.log(data, step=step)

    def close(self) -> None:
        if self.own:
            self.run.finish()


class _Mlflow:
    name = "mlflow"

    def __init__(self, run_id: str, own: bool):
        self.run_id, self.own = run_id, own

    def log(self, sc: Scorecard, step: int, html: Path, metrics: dict[str, float]) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        where = f"vibes/step-{step:06d}"
        data = []
        for r in answer_rows(sc, step):
            image = None
            if (im := _thumb(r.image_path)) is not None:
                image = f"{where}/images/{_safe(r.prompt)}.png"
                client.log_image(self.run_id, im, artifact_file=image)
            data.append(r.cells(image))
        client.log_dict(self.run_id, {"columns": list(COLUMNS), "data": data}, f"{where}/answers.json")
        client.log_text(self.run_id, html.read_text(encoding="utf-8"), f"{where}/scorecard.html")
        for k, v in metrics.items():
            client.log_metric(self.run_id, k, v, step=step)

    def close(self) -> None:
        if self.own:
            from mlflow.tracking import MlflowClient

            MlflowClient().set_terminated(self.run_id)


class _TensorBoard:
    name = "tensorboard"

    def __init__(self, writer, own: bool):
        self.writer, self.own = writer, own

    def log(self, sc: Scorecard, step: int, html: Path, metrics: dict[str, float]) -> None:
        import numpy as np

        from vibes_eval.report.summary import markdown_cell, scorecard_markdown

        rows = answer_rows(sc, step)
        md = ["| " + " | ".join(c for c in COLUMNS if c != "image") + " |", "|" + "---|" * (len(COLUMNS) - 1)]
        md += ["| " + " | ".join(markdown_cell(c) for i, c in enumerate(r.cells(None)) if i != 2) + " |" for r in rows]
        self.writer.add_text("vibes/answers", "\n".join(md), step)
        for r in rows:
            if (im := _thumb(r.image_path)) is not None:
                self.writer.add_image(f"vibes/image/{_safe(r.prompt)}", np.asarray(im.convert("RGB")), step, dataformats="HWC")
        copy = Path(self.writer.log_dir) / "vibes" / f"step-{step:06d}" / "scorecard.html"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(html, copy)
        self.writer.add_text("vibes/scorecard", scorecard_markdown(sc, report=str(copy)), step)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        if self.own:
            self.writer.close()


class Trackers:
    """The active trackers of one run; `log` never raises: a tracker's failure is one line through `say`."""

    def __init__(self, sinks: Iterable, say: Callable[[str], None]):
        self.sinks, self.say = list(sinks), say

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sinks]

    def log(self, sc: Scorecard, step: int, html: Path, metrics: dict[str, float] | None = None) -> None:
        for sink in self.sinks:
            try:
                sink.log(sc, step, Path(html), dict(metrics or {}))
            except Exception as e:  # noqa: BLE001 - a tracker's failure must not end a training run or a sweep
                from vibes_eval.errors import one_line

                self.say(f"{sink.name}: could not log step {step}: {one_line(e)}")

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:  # noqa: BLE001 - as in log: said, never raised
                from vibes_eval.errors import one_line

                self.say(f"{sink.name}: could not close its run: {one_line(e)}")


# -- inside a Trainer run: the runs its report_to callbacks opened ----------------------------------


def _installed(name: str) -> bool:
    return importlib.util.find_spec(_MODULE[name]) is not None


def trainer_trackers(report_to: Iterable[str] | str | None, trainer, say: Callable[[str], None]) -> Trackers:
    """The trackers of a Trainer's `report_to` whose library is installed and whose run is active now.

    Each one missing is one line through `say` (the callback says it once per run).
    """
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    if "all" in names:
        names = [n for n in TRACKERS if _installed(n)]
    sinks = []
    for name in (n for n in TRACKERS if n in names):
        if not _installed(name):
            say(f"report_to has {name} but the {_MODULE[name]} package is not installed: answers are not sent "
                f"to it (pip install '{_DIST}[{name}]')")
            continue
        sink = _trainer_sink(name, trainer)
        if sink is None:
            say(f"report_to has {name} but it has no active run yet: answers are not sent to it at this step")
        else:
            sinks.append(sink)
    return Trackers(sinks, say)


def _trainer_sink(name: str, trainer):
    if name == "wandb":
        import wandb

        return _Wandb(wandb.run, "train/global_step", own=False) if wandb.run is not None else None
    if name == "mlflow":
        import mlflow

        run = mlflow.active_run()
        return _Mlflow(run.info.run_id, own=False) if run is not None else None
    from transformers.integrations import TensorBoardCallback

    callbacks = trainer.callback_handler.callbacks if trainer is not None else []
    writer = next((c.tb_writer for c in callbacks if isinstance(c, TensorBoardCallback) and c.tb_writer is not None), None)
    return _TensorBoard(writer, own=False) if writer is not None else None


# -- `run` / `watch --report-to`: runs of our own ------------------------------------------------------


def parse_report_to(value: str | None) -> tuple[str, ...]:
    """`--report-to wandb,mlflow,tensorboard` -> the names; UsageError (exit 2) naming the extra to install."""
    if not value:
        return ()
    names = tuple(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    for n in names:
        if n not in TRACKERS:
            raise UsageError(f"--report-to: unknown tracker {n!r}; known: {', '.join(TRACKERS)}")
        if not _installed(n):
            raise UsageError(f"--report-to {n}: the {_MODULE[n]} package is not installed; "
                             f"install the extra: pip install '{_DIST}[{n}]'")
    return names


def cli_trackers(names: Iterable[str], logdir: Path, label: str, config: dict[str, Any], say: Callable[[str], None]) -> Trackers:
    """Open one run per tracker for a `run` or `watch` command (closed by `Trackers.close`).

    W&B: `wandb.init(project=$WANDB_PROJECT or "vibes-eval", name=label)`, offline with
    `WANDB_MODE=offline`; MLflow: a run in `$MLFLOW_TRACKING_URI` / `$MLFLOW_EXPERIMENT_NAME`;
    TensorBoard: event files under `logdir/tensorboard`.
    """
    sinks = []
    for name in names:
        try:
            sinks.append(_open_sink(name, Path(logdir), label, config))
        except Exception as e:  # noqa: BLE001 - a tracker that cannot start its run is said; the evaluation goes on
            from vibes_eval.errors import one_line

            say(f"{name}: could not start a run: {one_line(e)}")
    return Trackers(sinks, say)


def _open_sink(name: str, logdir: Path, label: str, config: dict[str, Any]):
    import os

    if name == "wandb":
        import wandb

        run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "vibes-eval", name=label, job_type="vibes-eval",
                         config=config, reinit="create_new")
        return _Wandb(run, None, own=True)
    if name == "mlflow":
        import mlflow
        from mlflow.tracking import MlflowClient

        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        exp_id = mlflow.set_experiment(experiment).experiment_id if experiment else "0"
        client = MlflowClient()
        run = client.create_run(exp_id, run_name=label[:200], tags={"vibes_eval": "1"})
        for k, v in config.items():
            client.log_param(run.info.run_id, k, str(v)[:500])
        return _Mlflow(run.info.run_id, own=True)
    from torch.utils.tensorboard import SummaryWriter

    return _TensorBoard(SummaryWriter(log_dir=str(logdir / "tensorboard")), own=True)


def scalar_metrics(sc: Scorecard) -> dict[str, float]:
    """The `vibes/*` numbers the Trainer callback logs: pass rate, the grounding signals, one 0/1 per diagnosis."""
    from vibes_eval.judge.metrics import metric_values
    from vibes_eval.suite.schema import DIAGNOSES

    out = {f"vibes/{k}": v for k, v in metric_values(sc).items()}
    out.update({f"vibes/diagnosis/{d}": float(d in sc.verdict.diagnoses) for d in (*DIAGNOSES, "regression")})
    return out


def step_of(checkpoint: str | Path) -> int:
    """The training step in a `checkpoint-N` folder name, else 0."""
    m = re.search(r"checkpoint-(\d+)$", str(checkpoint).rstrip("/"))
    return int(m.group(1)) if m else 0
