"""Which reinforcement settings improve the held-out answers, if any.

    python -m benchmarks.reinforce_settings [--settings grpo:5e-5:60 rejection:5e-5:60]

Each setting (method:learning rate:steps) runs reinforcement from the profile's fine-tuned
model (notebooks 01-06 must have run) in a temporary folder, then answers the held-out test
questions as notebook 07 does. The first row is the fine-tuned model itself: the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.sft_settings import held_out_row, held_out_setup
from python_files.checkpoint import Checkpoints, load_model, read_log
from python_files.errors import sentence_on_error
from python_files.profiles import with_settings
from python_files.reinforce import reinforce


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["grpo:5e-5:60", "rejection:5e-5:60"])
    args = parser.parse_args()
    profile, artifacts, device, tokenizer, questions = held_out_setup()
    finetuned = artifacts.require(Checkpoints(artifacts.checkpoints("sft")).best, "06_sft")
    print(f"{'setting':<22} {'reward first/last 10':>20}  {'documented correct':<20} {'made-up IDK':<20} {'mean F1':>7}")
    print(f"{'fine-tuned (06)':<22} {'':>20}  {held_out_row(load_model(finetuned, device), tokenizer, questions)}", flush=True)
    for text in args.settings:
        method, learning_rate, steps = text.split(":")
        setting = with_settings(profile, {"reinforce.method": method, "reinforce.learning_rate": float(learning_rate),
                                          "reinforce.max_steps": int(steps)})
        with tempfile.TemporaryDirectory() as folder:
            checkpoints = Checkpoints(Path(folder))
            reinforce(setting, artifacts, device, progress=False, checkpoints=checkpoints)
            rewards = [line["reward"] for line in read_log(checkpoints.log)]
            model = load_model(checkpoints.last, device)
        curve = f"{mean(rewards[:10]):.2f} -> {mean(rewards[-10:]):.2f}"
        print(f"{text:<22} {curve:>20}  {held_out_row(model, tokenizer, questions)}", flush=True)


if __name__ == "__main__":
    main()
