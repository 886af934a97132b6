"""What each architecture, optimizer and shape choice buys in the same training time.

    python -m benchmarks.ablations [--group architecture|shape] [--seconds 150] [--seeds 1 2]

Each variant is the profile (``cpu`` unless LLM_PROFILE says otherwise) with a few settings
changed. It trains from scratch on the token files of stage 02 for the same wall-clock time
(its steps are counted from its own speed, measured first, so its learning-rate schedule ends
when the time does), then prints the validation bits per byte on the whole validation split:
lower is better. Variants run one after the other in this process, so they share the
machine's load; run nothing else meanwhile. With several seeds (the initial weights and the
batches change), the table shows the mean and the spread (max - min).

- ``architecture``: GPT-2 (the profile's layout with every modern choice off), each choice
  of model.py alone on top of it, and all of them together;
- ``shape``: the profile as it is, then deeper, wider, longer contexts, larger batches and
  other learning rates.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time

import numpy as np
import torch

from benchmarks.machine import describe_machine
from python_files.artifacts import Artifacts
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.loader import Batch, RandomWindows
from python_files.model import GPT, GPT2_LAYOUT
from python_files.pretrain import model_config
from python_files.pretrain_data import open_tokens, read_pretrain_meta
from python_files.profiles import MODERN_MODEL, MODERN_TRAINING, Profile, active_profile, with_settings
from python_files.seeds import generator_for, seed_for
from python_files.tokenizer import TextTokenizer
from python_files.train import evaluate, learning_rate_at, make_optimizer, optimizer_step

GPT2 = {**{f"model.{key}": value for key, value in GPT2_LAYOUT.items()},
        "pretrain.optimizer": "adamw", "pretrain.schedule": "cosine"}
MODERN = {"model.positions": "rope", "model.norm": "rmsnorm", "model.mlp": "relu2", "model.qk_norm": True,
          "model.tied_head": False, "model.zero_init": True, "model.logit_softcap": 15.0,
          "pretrain.optimizer": "muon", "pretrain.schedule": "wsd"}
PROFILES_CHOICE = {**{f"model.{key}": value for key, value in MODERN_MODEL.items() if key in GPT2_LAYOUT},
                   **{f"pretrain.{key}": value for key, value in MODERN_TRAINING.items()}}
ARCHITECTURE = {
    "GPT-2 layout, AdamW, cosine": GPT2,
    "+ rotary positions": {**GPT2, "model.positions": "rope"},
    "+ RMSNorm": {**GPT2, "model.norm": "rmsnorm"},
    "+ ReLU^2 MLP": {**GPT2, "model.mlp": "relu2"},
    "+ QK-norm": {**GPT2, "model.qk_norm": True},
    "+ untied head": {**GPT2, "model.tied_head": False},
    "+ zero-init projections": {**GPT2, "model.zero_init": True},
    "+ logit soft-cap 15": {**GPT2, "model.logit_softcap": 15.0},
    "+ Muon": {**GPT2, "pretrain.optimizer": "muon"},
    "+ warmup-stable-decay": {**GPT2, "pretrain.schedule": "wsd"},
    "all of them": MODERN,
    "the winners (the profiles' choice)": {**GPT2, **PROFILES_CHOICE},
}
SHAPE = {
    "the profile": {},
    "6 layers": {"model.n_layer": 6},
    "3 layers x 256": {"model.n_layer": 3, "model.n_embd": 256},
    "4 layers x 256": {"model.n_embd": 256},
    "context 128": {"model.context_length": 128, "pretrain.batch_size": 32},
    "batch 32": {"pretrain.batch_size": 32},
    "learning rate x2": {"learning_rate_factor": 2.0},
    "learning rate x4": {"learning_rate_factor": 4.0},
    "learning rate x0.5": {"learning_rate_factor": 0.5},
}
GROUPS = {"architecture": ARCHITECTURE, "shape": SHAPE}
TIMING_STEPS = 9


def variant(profile: Profile, changes: dict) -> Profile:
    """`profile` with the settings of a row changed (dotted names, as LLM_SETTINGS has them)."""
    changes = dict(changes)
    factor = changes.pop("learning_rate_factor", 1.0)
    return with_settings(profile, {"pretrain.learning_rate": profile.pretrain.learning_rate * factor, **changes})


def seconds_per_step(profile: Profile, train_tokens, vocab_size: int, device) -> float:
    """The variant's speed on this machine: the median of timed steps, after two warm-up ones
    (a median, because one step slowed by the system would otherwise cost a variant steps)."""
    model, optimizer, config, batches = setup(profile, train_tokens, vocab_size, device, profile.seed)
    times = []
    for _ in range(2 + TIMING_STEPS):
        start = time.perf_counter()
        optimizer_step(model, optimizer, no_scaler(device), batches, 1, config.grad_clip, device, "fp32")
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def no_scaler(device) -> torch.amp.GradScaler:
    """fp32 training: the scaler of train.py, switched off."""
    return torch.amp.GradScaler(device.type, enabled=False)


def setup(profile: Profile, train_tokens, vocab_size: int, device, seed: int, max_steps: int = 1):
    model = GPT(model_config(profile, vocab_size), generator_for(seed, "initial weights")).to(device)
    config = dataclasses.replace(profile.pretrain, max_steps=max_steps,
                                 warmup_steps=min(profile.pretrain.warmup_steps, max_steps // 10 + 1),
                                 precision="fp32", compile=False)
    batches = RandomWindows(train_tokens, profile.model.context_length, config.batch_size, device,
                            seed=seed_for(seed, "pretraining batches"))
    return model, make_optimizer(model, config, device), config, batches


class EveryWindow:
    """The validation split cut into consecutive windows of the context length, `rows` a batch:
    every target scored once (the loop's validation windows are a sample of the split)."""

    def __init__(self, tokens: np.ndarray, length: int, device, rows: int = 16):
        self.tokens, self.length, self.device, self.rows = tokens, length, device, rows
        self.windows = (len(tokens) - 1) // length
        self.first = 0

    def batches(self) -> int:
        return -(-self.windows // self.rows)

    def next_batch(self) -> Batch:
        rows = range(self.first, min(self.windows, self.first + self.rows))
        self.first += self.rows
        chunk = torch.stack([torch.from_numpy(self.tokens[i * self.length:(i + 1) * self.length + 1].astype(np.int64))
                             for i in rows]).to(self.device)
        return Batch(chunk[:, :-1], chunk[:, 1:], None)


def validation_bpb(model: GPT, val_tokens: np.ndarray, token_bytes: torch.Tensor, device) -> float:
    """Bits per byte over every target of the validation split, each counted with its own bytes
    (train.evaluate, on every window instead of a sample)."""
    windows = EveryWindow(val_tokens, model.config.context_length, device)
    return evaluate(model, windows, windows.batches(), torch.device(device), "fp32", token_bytes)["val_bpb"]


def train_for(profile: Profile, seconds: float, seed: int, data: dict, device) -> dict:
    """Train a fresh model of `profile` for about `seconds`; its bits per byte and step count."""
    steps = max(10, int(seconds / seconds_per_step(profile, data["train"], data["vocab_size"], device)))
    model, optimizer, config, batches = setup(profile, data["train"], data["vocab_size"], device, seed, steps)
    scaler = no_scaler(device)
    started = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, config, group["peak_lr"])
        loss = optimizer_step(model, optimizer, scaler, batches, 1, config.grad_clip, device, "fp32").loss
        if not math.isfinite(loss):
            return {"bpb": float("nan"), "steps": step, "seconds": time.perf_counter() - started}
    return {"bpb": validation_bpb(model, data["val"], data["token_bytes"], device),
            "steps": steps, "seconds": time.perf_counter() - started}


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=list(GROUPS), default="architecture")
    parser.add_argument("--seconds", type=float, default=150.0, help="training time per variant")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the profile's seed")
    parser.add_argument("--only", nargs="+", default=None, help="variant names to run (default: all)")
    args = parser.parse_args()
    profile = active_profile()
    device = default_device()
    artifacts = Artifacts.for_profile(profile.name)
    meta = read_pretrain_meta(artifacts)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    args.seeds = args.seeds or [profile.seed]
    val = meta["splits"]["val"]
    data = {"train": open_tokens(artifacts, "train", meta), "val": np.asarray(open_tokens(artifacts, "val", meta)),
            "vocab_size": meta["vocab_size"], "token_bytes": torch.tensor(tokenizer.token_bytes(), device=device)}
    variants = {name: changes for name, changes in GROUPS[args.group].items()
                if args.only is None or name in args.only}
    print(f"{describe_machine(device)}\n{profile.summary()}\n{args.seconds:.0f} s of training per variant on {device.type}, "
          f"seeds {args.seeds}; validation: {val['tokens']:,} tokens\n")
    print(f"{'variant':<30} {'steps':>6} {'val bpb':>8} {'spread':>7} {'vs first':>9}")
    first = None
    for name, changes in variants.items():
        runs = [train_for(variant(profile, changes), args.seconds, seed, data, device) for seed in args.seeds]
        bpb = [run["bpb"] for run in runs]
        mean = sum(bpb) / len(bpb)
        first = mean if first is None else first
        print(f"{name:<30} {runs[0]['steps']:>6} {mean:>8.3f} {max(bpb) - min(bpb):>7.3f} "
              f"{(mean - first) / first:>+9.1%}", flush=True)


if __name__ == "__main__":
    main()
