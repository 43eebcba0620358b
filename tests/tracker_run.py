"""A toy Trainer run whose projector is zeroed at step 4, judged at steps 2 and 4, reporting to the trackers named.

Run by tests/test_trackers.py in a subprocess (W&B and MLflow keep process-wide state and threads):
    python tests/tracker_run.py OUTPUT_DIR HEALTHY_TOY_DIR wandb,mlflow,tensorboard
"""

from __future__ import annotations

import sys

import transformers
from helpers import SHAPES
from test_callback import ToyData, ZeroProjectorAt

from vibes_eval.integrations.transformers import VibesCallback


def main(out: str, healthy: str, report_to: str) -> None:
    model = transformers.LlavaForConditionalGeneration.from_pretrained(healthy)
    processor = transformers.AutoProcessor.from_pretrained(healthy)
    args = transformers.TrainingArguments(
        output_dir=out, max_steps=4, per_device_train_batch_size=8, learning_rate=1e-5, save_strategy="no", logging_steps=2,
        report_to=report_to.split(","), run_name="vibes-toy", use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0, remove_unused_columns=False)
    callback = VibesCallback(processor, suite=SHAPES, every=2, stop_on=(), log=print)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=ToyData(processor, n_scenes=8),
                                   callbacks=[ZeroProjectorAt(4), callback])
    trainer.train()
    print("checks:", [(c.step, c.status, c.diagnoses) for c in callback.checks], flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
