"""Answers, images and the scorecard in W&B (offline), MLflow (file store) and TensorBoard, read back with each one's reader.

A toy Trainer run (tests/tracker_run.py, in a subprocess) zeroes the projector at step 4; the
callback judges steps 2 and 4 and sends them to every tracker of `report_to` that is installed.
Each backend's test skips, naming the extra, when its library is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SHAPES

from vibes_eval.integrations import trackers

INSTALLED = [n for n in trackers.TRACKERS if importlib.util.find_spec(n) is not None]
BROKEN_STEP = 4


def _need(name: str) -> None:
    if name not in INSTALLED:
        pytest.skip(f"the {name} package is not installed (pip install 'llava-vibes-eval[{name}]')")


@pytest.fixture(scope="module")
def trained(zoo_dir, tmp_path_factory):
    """The toy run, once, reporting to every installed tracker: (its folder, the environment it ran with)."""
    if not INSTALLED:
        pytest.skip("no tracker installed (pip install 'llava-vibes-eval[trackers]')")
    root = tmp_path_factory.mktemp("trackers")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(root), "WANDB_DATA_DIR": str(root / "wandb-data"),
           "WANDB_CACHE_DIR": str(root / "wandb-cache"), "WANDB_CONFIG_DIR": str(root / "wandb-config"), "WANDB_SILENT": "true",
           "WANDB_PROJECT": "vibes-toy", "MLFLOW_TRACKING_URI": (root / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "tracker_run.py"), str(root / "run"), str(zoo_dir / "healthy"),
                           ",".join(INSTALLED)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checks: [(2, 'pass', []), (4, 'fail', ['projector_disconnected'" in done.stdout, done.stdout[-2000:]
    assert "could not log" not in done.stdout + done.stderr, done.stdout[-2000:]
    return root, env


def _check_rows(columns: list[str], rows: list[list], images_ok) -> None:
    """Every prompt at the broken step: its answers the same with any image (a zeroed projector), some failing, each with an image."""
    assert columns == list(trackers.COLUMNS)
    col = {c: i for i, c in enumerate(columns)}
    assert len(rows) == 10 and {r[col["step"]] for r in rows} == {BROKEN_STEP}
    asked = [r for r in rows if r[col["blank_image_answer"]]]  # the refusal prompts are not asked with other images
    assert len(asked) >= 6 and all(r[col["answer"]] == r[col["blank_image_answer"]] == r[col["swapped_image_answer"]] for r in asked)
    assert any(r[col["status"]] == "fail" and r[col["reason"]] for r in rows)
    assert all(images_ok(r[col["image"]]) for r in rows)


def test_tensorboard_has_the_broken_steps_answers_images_and_scorecard(trained):
    _need("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    root, _ = trained
    logdir = next((root / "run" / "runs").iterdir())  # the Trainer's logging_dir
    events = EventAccumulator(str(logdir), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    text = {t.step: make_ndarray(t.tensor_proto).item().decode() for t in events.Tensors("vibes/answers/text_summary")}
    assert sorted(text) == [2, BROKEN_STEP]
    broken = [line for line in text[BROKEN_STEP].splitlines()[2:]]
    assert len(broken) == 10 and any("| fail |" in line for line in broken)
    images = [t for t in events.Tags()["images"] if t.startswith("vibes/image/")]
    assert len(images) == 10 and all(BROKEN_STEP in [e.step for e in events.Images(t)] for t in images)
    card = {t.step: make_ndarray(t.tensor_proto).item().decode() for t in events.Tensors("vibes/scorecard/text_summary")}
    assert "projector_disconnected" in card[BROKEN_STEP] and "projector_disconnected" not in card[2]
    html = logdir / "vibes" / f"step-{BROKEN_STEP:06d}" / "scorecard.html"
    assert str(html) in card[BROKEN_STEP] and "projector_disconnected" in html.read_text()


def test_wandb_offline_run_has_the_broken_steps_table_with_images_and_the_scorecard(trained):
    _need("wandb")
    from tracker_readers import wandb_logged

    root, _ = trained
    run = next((root / "wandb").glob("offline-run-*"))
    history, artifacts = wandb_logged(run)
    logged = [h for h in history if "vibes/answers/_type" in h]
    assert [h["train/global_step"] for h in logged] == [2, BROKEN_STEP]  # the training step is the axis
    broken = logged[-1]
    assert broken["vibes/answers/_type"] == "table-file" and broken["vibes/scorecard/_type"] == "html-file"
    assert "projector_disconnected" in (run / "files" / broken["vibes/scorecard/path"]).read_text()
    staged = [files for name, files in artifacts.items() if "vibesanswers" in name]
    table_files = [files for files in staged if json.loads(Path(files["vibes/answers.table.json"]).read_text())["data"][0][0]
                   == BROKEN_STEP]
    assert len(table_files) == 1
    files = table_files[0]
    table = json.loads(Path(files["vibes/answers.table.json"]).read_text())
    _check_rows(table["columns"], table["data"], lambda cell: cell["_type"] == "image-file"
                and Path(files[cell["path"]]).read_bytes()[:4] == b"\x89PNG")


def test_mlflow_file_store_has_the_broken_steps_table_images_scorecard_and_the_runs_params(trained, monkeypatch):
    _need("mlflow")
    from mlflow.tracking import MlflowClient

    root, env = trained
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.x reads a file store only when told to
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params["learning_rate"] == "1e-05"  # the Trainer's own params, beside our artifacts
    where = f"vibes/step-{BROKEN_STEP:06d}"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "vibes")} == {"vibes/step-000002", where}
    local = Path(client.download_artifacts(run.info.run_id, where, str(root / "download")))
    table = json.loads((local / "answers.json").read_text())
    _check_rows(table["columns"], table["data"], lambda cell: (local / Path(cell).relative_to(where)).read_bytes()[:4] == b"\x89PNG")
    assert "projector_disconnected" in (local / "scorecard.html").read_text()


# -- `run --report-to` ------------------------------------------------------------------------------------


def test_run_report_to_without_the_library_is_exit_2_naming_the_extra(zoo_dir, tmp_path, capsys, monkeypatch):
    from vibes_eval.cli.main import main

    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` finds when it is not installed
    code = main(["run", str(zoo_dir / "healthy"), "--report-to", "wandb", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "--report-to wandb" in err[0] and "pip install 'llava-vibes-eval[wandb]'" in err[0]
    assert not (tmp_path / "r").exists()  # refused before anything was loaded or written
    assert main(["run", str(zoo_dir / "healthy"), "--report-to", "neptune", "--quiet"]) == 2


def test_run_report_to_tensorboard_logs_the_checkpoints_step(zoo_dir, tmp_path):
    _need("tensorboard")
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vibes_eval.cli.main import main

    ckpt = tmp_path / "checkpoint-300"
    shutil.copytree(zoo_dir / "zero-projector", ckpt)
    assert main(["run", str(ckpt), "--suite", str(SHAPES), "--report-to", "tensorboard", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 1
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    assert [t.step for t in events.Tensors("vibes/answers/text_summary")] == [300]
    assert [s.step for s in events.Scalars("vibes/pass_rate")] == [300]
    assert len([t for t in events.Tags()["images"] if t.startswith("vibes/image/")]) == 10


def test_watch_report_to_tensorboard_is_one_run_over_the_steps(zoo_dir, tmp_path):
    _need("tensorboard")
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vibes_eval.cli.main import main

    out = tmp_path / "train"
    for step, variant in ((2, "healthy"), (4, "zero-projector")):
        shutil.copytree(zoo_dir / variant, out / f"checkpoint-{step}")
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert main(["watch", str(out), "--every-new", "--until-idle", "0", "--settle", "0", "--suite", str(SHAPES),
                 "--report-to", "tensorboard"]) == 1
    (logdir,) = [p.parent for p in (out / "vibes" / "tensorboard").glob("events.out.tfevents.*")]
    events = EventAccumulator(str(logdir), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    events.Reload()
    assert [t.step for t in events.Tensors("vibes/answers/text_summary")] == [2, 4]
    flags = {s.step: s.value for s in events.Scalars("vibes/diagnosis/projector_disconnected")}
    assert flags == {2: 0.0, 4: 1.0}


def test_a_failing_tracker_is_one_line_and_the_others_still_log(tmp_path):
    class Boom:
        name = "boom"

        def log(self, sc, step, html, metrics):
            raise RuntimeError("disk full\nsecond line")

    class Fine:
        name = "fine"
        steps: list[int] = []

        def log(self, sc, step, html, metrics):
            self.steps.append(step)

    lines: list[str] = []
    trackers.Trackers([Boom(), Fine()], lines.append).log(None, 7, tmp_path / "scorecard.html")
    assert lines == ["boom: could not log step 7: RuntimeError: disk full"] and Fine.steps == [7]


def test_a_trainer_tracker_without_its_library_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    lines: list[str] = []
    found = trackers.trainer_trackers(["mlflow"], None, lines.append)
    assert found.names == [] and len(lines) == 1
    assert "mlflow package is not installed" in lines[0] and "llava-vibes-eval[mlflow]" in lines[0]
