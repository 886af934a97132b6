"""Which fine-tuning settings give the best answers to the held-out questions.

    python -m benchmarks.sft_settings [--settings 500:5e-4 1000:5e-4 500:1e-3 500:5e-4:muon]

Each setting (steps:learning rate, and optionally :optimizer, adamw or muon) fine-tunes the profile's pretrained model (stages 01-05 must
have run) in a temporary folder, then answers the held-out test questions of stage 05 as
notebook 07 does, and prints the rates with their 95% intervals side by side.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from python_files.artifacts import Artifacts
from python_files.checkpoint import Checkpoints, load_model
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.profiles import active_profile, with_settings
from python_files.qa_eval import answer_all, format_rate, summary_table
from python_files.sft import finetune
from python_files.sft_data import read_questions
from python_files.tokenizer import TextTokenizer


def held_out_setup():
    """The profile, its artifacts, the device, the tokenizer and the held-out questions, and a
    line that says which."""
    profile = active_profile()
    artifacts = Artifacts.for_profile(profile.name)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    questions = read_questions(artifacts, "test")
    print(f"{profile.summary()}\n{len(questions)} held-out questions\n")
    return profile, artifacts, default_device(), tokenizer, questions


def held_out_row(model, tokenizer: TextTokenizer, questions) -> str:
    """The model's answers to `questions`, scored: documented correct, made-up right, mean F1."""
    table = summary_table(answer_all(model, tokenizer, questions))
    known, made_up = table["held-out objects"], table["made-up names"]
    return (f"{format_rate(known['correct'], known['correct_95']):<20} "
            f"{format_rate(made_up['correct'], made_up['correct_95']):<20} {known['mean_f1']:>7.2f}")


def parse_setting(text: str) -> dict[str, object]:
    """"500:5e-4" or "500:5e-4:muon" as fine-tuning settings."""
    steps, learning_rate, *optimizer = text.split(":")
    settings = {"sft.max_steps": int(steps), "sft.learning_rate": float(learning_rate)}
    return {**settings, "sft.optimizer": optimizer[0]} if optimizer else settings


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["500:5e-4", "1000:5e-4", "500:1e-3"])
    args = parser.parse_args()
    profile, artifacts, device, tokenizer, questions = held_out_setup()
    print(f"{'setting':<16} {'val loss':>9}  {'documented correct':<20} {'made-up IDK':<20} {'mean F1':>7}")
    for text in args.settings:
        setting = with_settings(profile, parse_setting(text))
        with tempfile.TemporaryDirectory() as folder:
            checkpoints = Checkpoints(Path(folder))
            result = finetune(setting, artifacts, device, progress=False, checkpoints=checkpoints)
            model = load_model(checkpoints.best, device, tokenizer.sha256)
        print(f"{text:<16} {result.best_val_loss:>9.3f}  "
              f"{held_out_row(model, tokenizer, questions)}", flush=True)


if __name__ == "__main__":
    main()
