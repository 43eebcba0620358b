"""What one VibesCallback check adds to a training run, on the toy (CPU): time per trigger, and memory.

    python bench/callback.py [--pairs 3] [--steps 24] [--every 8] [--threads 1]

Alternates, in one process, A (continue-train the healthy toy with `transformers.Trainer` for
--steps steps, no callback) and B (the same run with `VibesCallback(every=--every)`), --pairs
times, and prints the median wall time of each, the time B adds per check ((B - A) / checks),
the callback's own measured seconds per check, and the mean training step. Then, once, the peak
tensor memory of one training step and of one check (torch.profiler's allocation events, plus the
bytes already live: parameters, gradients, optimizer state), and their ratio.
Needs the toy zoo (`vibes-eval toy build`; cached after the first build).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def memory(zoo: Path, suite: Path, batch: int = 8) -> dict:
    """Peak memory of one training step and of one check, from the same training state."""
    import torch
    import transformers
    from test_callback import ToyData, live_bytes, peak_bytes

    from vibes_eval.integrations.live import evaluate_live
    from vibes_eval.suite.schema import load_suite

    model = transformers.LlavaForConditionalGeneration.from_pretrained(zoo / "healthy")
    processor = transformers.AutoProcessor.from_pretrained(zoo / "healthy")
    data = ToyData(processor)
    batch_rows = torch.utils.data.default_collate([data[i] for i in range(batch)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    def step():
        loss = model(**batch_rows).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # the optimizer state exists from here on, as in a run
    loaded = load_suite(suite)
    evaluate_live(model, processor, loaded)  # warm: the first check also builds lazy caches (lexicon, templates)
    live = live_bytes(model, opt)
    step_peak = peak_bytes(step)
    used = []
    check_peak = peak_bytes(lambda: used.append(evaluate_live(model, processor, loaded)[1]))
    return {"live_bytes": live, "step_peak_bytes": live + step_peak, "check_peak_bytes": live + check_peak,
            "ratio": (live + check_peak) / (live + step_peak), "same_object": used[0] is model}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--every", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    from test_callback import ToyData

    from vibes_eval.integrations.transformers import VibesCallback
    from vibes_eval.toy.factory import build
    from vibes_eval.toy.variants import VARIANTS

    tmp = Path(tempfile.mkdtemp(prefix="vibes-bench-callback-"))
    zoo = tmp / "zoo"
    build(zoo, ["healthy"], log=lambda m: print(m, file=sys.stderr))
    assert "healthy" in VARIANTS
    suite = REPO / "suites" / "shapes.yaml"

    def one(with_callback: bool) -> tuple[float, list[float], int]:
        model = transformers.LlavaForConditionalGeneration.from_pretrained(zoo / "healthy")
        processor = transformers.AutoProcessor.from_pretrained(zoo / "healthy")
        cbs = [VibesCallback(processor, suite=suite, every=args.every, log=lambda s: None)] if with_callback else []
        targs = transformers.TrainingArguments(
            output_dir=str(tmp / "run"), max_steps=args.steps, per_device_train_batch_size=8, learning_rate=1e-5,
            save_strategy="no", logging_steps=args.steps, report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
            dataloader_num_workers=0, remove_unused_columns=False)
        trainer = transformers.Trainer(model=model, args=targs, train_dataset=ToyData(processor), callbacks=cbs)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        checks = [c.seconds for c in cbs[0].checks] if cbs else []
        return wall, checks, trainer.state.global_step

    a, b, own = [], [], []
    for _ in range(args.pairs):
        a.append(one(False)[0])
        wall, checks, _ = one(True)
        b.append(wall)
        own += checks
    n_checks = args.steps // args.every
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"toy, CPU, {args.threads} thread(s), {args.steps} steps of batch 8, a check every {args.every} steps ({n_checks} checks), "
          f"medians of {args.pairs} pairs")
    print(f"A train only          {ma:.2f} s  ({ma / args.steps * 1000:.0f} ms per step incl. Trainer overhead)")
    print(f"B train + callback    {mb:.2f} s")
    print(f"added per check       {(mb - ma) / n_checks:.2f} s   (the callback's own timing: median {statistics.median(own):.2f} s)")
    m = memory(zoo, suite)
    print(f"peak tensor memory    step {m['step_peak_bytes'] / 2**20:.1f} MiB, check {m['check_peak_bytes'] / 2**20:.1f} MiB "
          f"(ratio {m['ratio']:.2f}; live before either {m['live_bytes'] / 2**20:.1f} MiB; same model object: {m['same_object']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
