"""VibesCallback in a real `transformers.Trainer` run: the healthy toy continue-trained on CPU."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from helpers import SHAPES

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vibes_eval.integrations.transformers import VibesCallback  # noqa: E402
from vibes_eval.records import load_scorecard  # noqa: E402


class ToyData(torch.utils.data.Dataset):
    """Question/answer examples of the toy world, as the Trainer's default collator wants them."""

    def __init__(self, processor, n_scenes: int = 24, seed: int = 1234):
        from vibes_eval.toy import train

        split = train.make_split(processor, seed, n_scenes)
        self.data, self.pixels = train.encode(processor, split), split.pixels

    def __len__(self):
        return self.data.input_ids.shape[0]

    def __getitem__(self, i):
        d = self.data
        return {"input_ids": d.input_ids[i], "attention_mask": d.attention_mask[i], "labels": d.labels[i],
                "pixel_values": self.pixels[d.image_index[i]]}


class ZeroProjectorAt(transformers.TrainerCallback):
    """The fault: at step `step` the projector's weights and biases are zeroed (as a bad load would leave them)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                for p in model.model.multi_modal_projector.parameters():
                    p.zero_()


def peak_bytes(fn) -> int:
    """Largest net tensor memory allocated while `fn()` runs (CPU allocations seen by torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    cur = peak = 0
    for _, n in events:
        cur += n
        peak = max(peak, cur)
    return peak


def live_bytes(model, optimizer) -> int:
    """Parameters, their gradients and the optimizer's state tensors."""
    import torch

    total = sum(p.numel() * p.element_size() for p in model.parameters())
    total += sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    for state in optimizer.state.values():
        total += sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))
    return total


def _trainer(zoo_dir: Path, out: Path, callbacks, *, steps: int = 24, save_steps: int = 8):
    model = transformers.LlavaForConditionalGeneration.from_pretrained(zoo_dir / "healthy")
    processor = transformers.AutoProcessor.from_pretrained(zoo_dir / "healthy")
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=8, learning_rate=1e-5, save_steps=save_steps,
        save_only_model=True, logging_steps=4, report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0, remove_unused_columns=False)
    cbs = [cb(processor) if callable(cb) and not isinstance(cb, transformers.TrainerCallback) else cb for cb in callbacks]
    # processing_class: the Trainer saves the processor into each checkpoint (what `watch` needs to load one)
    return transformers.Trainer(model=model, args=args, train_dataset=ToyData(processor), callbacks=cbs,
                                processing_class=processor), processor


def test_healthy_continue_training_every_check_passes(zoo_dir, tmp_path):
    lines = []
    trainer, processor = _trainer(zoo_dir, tmp_path / "run", [
        lambda processor: VibesCallback(processor, suite=SHAPES, every=8, log=lines.append)])
    cb = next(c for c in trainer.callback_handler.callbacks if isinstance(c, VibesCallback))
    processor.tokenizer.padding_side = "right"  # as a training collator may want it; a check uses left and puts it back
    trainer.train()
    assert [c.step for c in cb.checks] == [8, 16, 24]
    assert [c.status for c in cb.checks] == ["pass"] * 3, [c.diagnoses for c in cb.checks]
    assert all(c.model_id == id(trainer.model) for c in cb.checks)  # the live object, not a copy
    logged = [h for h in trainer.state.log_history if "vibes/pass_rate" in h]
    assert [h["step"] for h in logged] == [8, 16, 24]
    assert all(h["vibes/image_gain"] > 0.5 and h["vibes/diagnosis/projector_disconnected"] == 0.0 for h in logged)
    assert trainer.model.training  # back in train mode
    assert processor.tokenizer.padding_side == "right"
    for step in (8, 16, 24):  # every=N: the report lands in OUTPUT_DIR/vibes/step-N/ (or checkpoint-N/vibes at a save)
        report = next(p for p in (tmp_path / "run" / f"checkpoint-{step}" / "vibes", tmp_path / "run" / "vibes" / f"step-{step}")
                      if (p / "scorecard.json").is_file())
        assert load_scorecard(report).verdict.status.value == "pass"
    trend = json.loads((tmp_path / "run" / "vibes" / "trend.json").read_text())
    assert [e["step"] for e in trend["entries"]] == [8, 16, 24]
    assert len(lines) == 3 and lines[0].startswith("vibes-eval step 8: PASS")


def test_projector_fault_stops_training(zoo_dir, tmp_path):
    from vibes_eval.cli.main import main

    assert main(["run", str(zoo_dir / "healthy"), "--out", str(tmp_path / "base"), "--quiet"]) == 0  # the parent's scorecard
    trainer, _ = _trainer(zoo_dir, tmp_path / "run", [
        ZeroProjectorAt(12),
        lambda processor: VibesCallback(processor, suite=SHAPES, every="save", stop_on=("projector_disconnected",),
                                        baseline=tmp_path / "base", log=lambda s: None),
    ], steps=40, save_steps=6)
    cb = next(c for c in trainer.callback_handler.callbacks if isinstance(c, VibesCallback))
    trainer.train()
    assert trainer.state.global_step == 12  # stopped at the check right after the fault
    assert [(c.step, c.status) for c in cb.checks] == [(6, "pass"), (12, "fail")]
    assert "projector_disconnected" in cb.checks[-1].diagnoses
    assert "regression" in cb.checks[-1].diagnoses and "regression" not in cb.checks[0].diagnoses  # against the baseline
    logged = [h for h in trainer.state.log_history if "vibes/diagnosis/projector_disconnected" in h]
    assert [(h["step"], h["vibes/diagnosis/projector_disconnected"]) for h in logged] == [(6, 0.0), (12, 1.0)]
    sc = load_scorecard(tmp_path / "run" / "checkpoint-12" / "vibes")
    assert "projector_disconnected" in sc.verdict.diagnoses and sc.fingerprint["loader"] == "live"


def test_bad_arguments():
    with pytest.raises(ValueError, match="every must be 'save' or a positive number"):
        VibesCallback(None, suite=SHAPES, every=0)
    with pytest.raises(ValueError, match="stop_on: unknown diagnosis 'projector_gone'"):
        VibesCallback(None, suite=SHAPES, stop_on=("projector_gone",))


def test_a_check_uses_the_live_model_and_no_more_memory_than_a_step(zoo_dir):
    from vibes_eval.integrations.live import evaluate_live
    from vibes_eval.suite.schema import load_suite

    model = transformers.LlavaForConditionalGeneration.from_pretrained(zoo_dir / "healthy")
    processor = transformers.AutoProcessor.from_pretrained(zoo_dir / "healthy")
    rows = torch.utils.data.default_collate([ToyData(processor)[i] for i in range(8)])  # the Trainer tests' batch
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    def step():
        model(**rows).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # the optimizer state exists from here on, as in a run
    suite = load_suite(SHAPES)
    evaluate_live(model, processor, suite)  # the first check also fills lazy caches (lexicon, templates)
    live = live_bytes(model, opt)
    first = next(model.parameters()).data_ptr()
    step_peak = live + peak_bytes(step)
    used = []
    check_peak = live + peak_bytes(lambda: used.append(evaluate_live(model, processor, suite)))
    sc, evaluated, _ = used[0]
    assert evaluated is model and next(evaluated.parameters()).data_ptr() == first  # the same object, the same storage
    assert sc.verdict.status.value == "pass" and model.training
    assert check_peak <= 1.10 * step_peak, (check_peak, step_peak)


def _said_left(lines: list[str]) -> list[str]:
    """The one line the callback says at the end of training for the checkpoints its watcher had not judged."""
    return [line for line in lines if line.startswith("vibes-eval: training ended before the watcher judged")]


def test_sharded_parameters_fall_back_to_watch(zoo_dir, tmp_path, monkeypatch):
    import shlex

    import vibes_eval.integrations.transformers as integration
    from vibes_eval.cli.main import main

    monkeypatch.setattr(integration, "_sharded", lambda args, model: "FSDP shards the parameters")
    lines = []
    trainer, _ = _trainer(zoo_dir, tmp_path / "run", [
        lambda processor: VibesCallback(processor, suite=SHAPES, every="save", log=lines.append)], steps=8, save_steps=4)
    cb = next(c for c in trainer.callback_handler.callbacks if isinstance(c, VibesCallback))
    trainer.train()
    assert cb.checks == [] and trainer.state.global_step == 8  # nothing evaluated in the training process
    assert len([line for line in lines if "FSDP shards the parameters" in line]) == 1  # said once
    trend_file = tmp_path / "run" / "vibes" / "trend.json"
    judged = [e["step"] for e in json.loads(trend_file.read_text())["entries"]] if trend_file.is_file() else []
    left = _said_left(lines)  # the end of training waited seconds at most: what the watcher had not judged is said
    assert len(left) == (judged != [4, 8]), lines
    if left:
        assert left[0].split(": `")[0].endswith(", ".join(f"checkpoint-{s}" for s in (4, 8) if s not in judged)), left
        argv = shlex.split(left[0].split("`")[1])  # ... with the command that judges them
        assert argv[:2] == ["vibes-eval", "watch"] and main(argv[1:]) == 0
    trend = json.loads(trend_file.read_text())
    assert [e["step"] for e in trend["entries"]] == [4, 8]  # both saved checkpoints judged from disk
    assert all(e["status"] == "pass" for e in trend["entries"])


def test_a_stuck_watcher_never_holds_the_end_of_training(zoo_dir, tmp_path, monkeypatch):
    import os
    import sys
    import time

    import vibes_eval.integrations.transformers as integration

    pid_file = tmp_path / "watcher.pid"
    stuck = [sys.executable, "-c", "import os, signal, sys, time\n"  # a watcher deaf to SIGINT and SIGTERM
             "signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
             f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"]
    real_argv = VibesCallback._watch_argv
    monkeypatch.setattr(VibesCallback, "_watch_argv",
                        lambda self, args, until_idle: stuck if until_idle is None else real_argv(self, args, until_idle))
    monkeypatch.setattr(integration, "_sharded", lambda args, model: "FSDP shards the parameters")
    last_step = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            last_step[:] = [time.monotonic()]

    lines = []
    trainer, _ = _trainer(zoo_dir, tmp_path / "run", [
        lambda processor: VibesCallback(processor, suite=SHAPES, every="save", log=lines.append), Clock()], steps=8, save_steps=4)
    trainer.train()
    waited = time.monotonic() - last_step[0]
    assert trainer.state.global_step == 8 and waited < 5.0, waited  # WATCHER_STOP s, then SIGKILL
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left behind
        os.kill(pid, 0)
    left = _said_left(lines)
    assert len(left) == 1 and "judged checkpoint-4, checkpoint-8:" in left[0], lines


def _rank_main(rank: int, world: int, port: int, results) -> None:
    """One of two processes: rank 0 'finds' projector_disconnected, rank 1 must stop too without evaluating."""
    import torch.distributed as dist

    import vibes_eval.integrations.transformers as integration

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=90))
    try:
        cb = VibesCallback(None, suite=SHAPES, every=1, log=lambda s: None)
        evaluated = []

        def fake_check(args, state, model, saved):
            evaluated.append(state.global_step)
            return integration.Check(step=state.global_step, status="fail", diagnoses=["projector_disconnected"],
                                     report=Path("r"), seconds=0.0, model_id=0)

        cb._check = fake_check
        state = transformers.TrainerState()
        state.global_step = 5
        state.is_world_process_zero = rank == 0
        control = transformers.TrainerControl()
        cb._trigger(transformers.TrainingArguments(output_dir="unused", use_cpu=True, report_to=[]), state, control,
                    torch.nn.Linear(2, 2), saved=False)
        results.put((rank, evaluated, control.should_training_stop))
    finally:
        dist.destroy_process_group()


def test_under_two_processes_rank_0_evaluates_and_both_stop():
    import multiprocessing as mp
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(rank, 2, port, results)) for rank in range(2)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=120)
    finally:  # a rank stuck in the rendezvous must not keep pytest waiting for it at exit
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    assert [p.exitcode for p in procs] == [0, 0]
    got = sorted(results.get(timeout=5) for _ in procs)
    assert got == [(0, [5], True), (1, [], True)]
