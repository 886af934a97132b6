"""The cost of a Muon step on this machine, in each Newton-Schulz number format.

    python -m benchmarks.muon_step [--profile cpu] [--steps 10]

Times a whole training step (forward, backward, optimizer) of the profile's model with:

- AdamW alone, the reference;
- Muon for the blocks' matrices with Newton-Schulz in bf16 (what `torch.optim.Muon` does);
- the same in fp32;

one after the other in this process, so the ratios compare them under the same load. Then it
prints which format the engine picks here (`muon.newton_schulz_format`). On a CPU that
emulates bf16 (AVX2, no AVX-512 BF16 or AMX), the bf16 step is much slower; the engine picks
fp32 there, and the Muon step should cost at most about 1.5x the AdamW step.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.machine import describe_machine
from benchmarks.training_speed import SameBatch, measure
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.model import GPT
from python_files.muon import newton_schulz_format
from python_files.profiles import PROFILES, active_profile
from python_files.train import make_optimizer
from python_files.seeds import generator_for

VARIANTS = {"AdamW only": {"optimizer": "adamw"},
            "Muon, bf16 Newton-Schulz": {"optimizer": "muon", "newton_schulz": "bf16"},
            "Muon, fp32 Newton-Schulz": {"optimizer": "muon", "newton_schulz": "fp32"}}


def step_seconds(profile, device: torch.device, settings: dict, steps: int) -> float:
    config = profile.model
    model = GPT(config, generator_for(profile.seed, "initial weights")).to(device)
    train_config = dataclasses.replace(profile.pretrain, compile=False, **settings)
    batches = SameBatch(config.vocab_size, train_config.batch_size, config.context_length, device, profile.seed)
    return measure(model, make_optimizer(model, train_config, device), train_config, batches, steps,
                   device)["ms_per_step"] / 1e3


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(PROFILES), default=None)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    profile = PROFILES[args.profile] if args.profile else active_profile()
    device = default_device()
    print(f"{describe_machine(device)}")
    print(f"profile {profile.name}: {profile.model.n_layer} layers x {profile.model.n_embd}, batch "
          f"{profile.pretrain.batch_size} x {profile.model.context_length}, {args.steps} steps each")
    seconds = {name: step_seconds(profile, device, settings, args.steps) for name, settings in VARIANTS.items()}
    adamw = seconds["AdamW only"]
    for name, value in seconds.items():
        print(f"{name:<26} {value * 1e3:8.1f} ms a step   {value / adamw:5.2f}x AdamW")
    chosen = newton_schulz_format(device.type)
    print(f"the engine picks {chosen} here: a Muon step costs "
          f"{seconds[f'Muon, {chosen} Newton-Schulz'] / adamw:.2f}x an AdamW step")


if __name__ == "__main__":
    main()
