"""Training speed of a profile's model on this device, against a plain-PyTorch baseline.

    python -m benchmarks.training_speed [--profile gpu] [--steps 20] [--batch-size 16]

Prints tokens/s, ms per step, peak memory and model FLOPs utilization (MFU: the training
FLOPs per token of `model.flops_per_token` times tokens/s, over the device's peak) for:

- the run as `train.py` does it: mixed precision on GPUs (bf16 from sm80, fp16 below), fused
  attention, fused AdamW and TF32 on CUDA, the padded vocabulary, and torch.compile where the
  profile enables it;
- a baseline of the same model: fp32, textbook attention, the default AdamW, no compile.

Both run one after the other in this process, so their ratio compares them on the same
machine under the same load. Peak FLOPs are the vendors' dense figures; CPUs get no MFU.
"""

import argparse
import dataclasses
import resource
import time

import torch

from python_files.device import compile_enabled, precision_for
from python_files.distributed import Distributed
from python_files.errors import sentence_on_error
from python_files.loader import Batch
from python_files.model import GPT, flops_per_token
from python_files.profiles import PROFILES, active_profile, with_settings
from python_files.train import TrainConfig, make_optimizer, optimizer_step, wrap_for_training
from python_files.seeds import generator_for

# dense tensor-core peaks: T4 fp16, A100 and H100 SXM bf16 (fp16 is the same on these)
PEAK_FLOPS = {"T4": 65e12, "A100": 312e12, "H100": 989e12, "H200": 989e12}


class SameBatch:
    """A loader that returns one random batch forever: the benchmark measures compute only."""

    def __init__(self, vocab_size, batch_size, context_length, device, seed: int):
        tokens = torch.randint(0, vocab_size, (batch_size, context_length + 1),
                               generator=generator_for(seed, "benchmark batch")).to(device)
        self.batch, self.batch_size = Batch(tokens[:, :-1], tokens[:, 1:], None), batch_size

    def next_batch(self) -> Batch:
        return self.batch


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6   # the process so far, in GB


def measure(model, optimizer, config: TrainConfig, batches, steps: int, device) -> dict:
    precision = precision_for(device, config.precision)
    network = wrap_for_training(model, config, Distributed())
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(3):   # warm-up: compilation, memory pools, kernel selection
        optimizer_step(network, optimizer, scaler, batches, 1, 1.0, device, precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        optimizer_step(network, optimizer, scaler, batches, 1, 1.0, device, precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    tokens = batches.batch.inputs.numel()
    return {"precision": precision, "ms_per_step": seconds * 1e3, "tokens_per_s": tokens / seconds,
            "peak_memory_gb": peak_memory_gb(device)}


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(PROFILES), default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    profile = PROFILES[args.profile] if args.profile else active_profile()
    if args.batch_size:
        profile = with_settings(profile, {"pretrain.batch_size": args.batch_size})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    optimized_config = profile.model
    baseline_config = dataclasses.replace(optimized_config, fused_attention=False, vocab_multiple=1)
    runs = {}
    for name, config, train_config in [
            ("optimized", optimized_config,
             dataclasses.replace(profile.pretrain, compile=compile_enabled(profile.pretrain.compile, device))),
            ("baseline", baseline_config, TrainConfig(1, 1e-4, 0, precision="fp32"))]:
        model = GPT(config, generator_for(profile.seed, "initial weights")).to(device)
        optimizer = make_optimizer(model, train_config, device) if name == "optimized" else \
            torch.optim.AdamW(model.parameters(), lr=1e-4, fused=False, foreach=False)
        batches = SameBatch(config.vocab_size, profile.pretrain.batch_size, config.context_length, device,
                            profile.seed)
        runs[name] = measure(model, optimizer, train_config, batches, args.steps, device)
        del model, optimizer

    peak = peak_flops(device)
    flops = flops_per_token(optimized_config)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"profile {profile.name} on {label}: {GPT(optimized_config).num_parameters() / 1e6:.1f}M "
          f"parameters, batch {profile.pretrain.batch_size} x {optimized_config.context_length} tokens, "
          f"{flops / 1e6:.0f} MFLOPs per token")
    print(f"{'run':<10} {'precision':>9} {'tokens/s':>10} {'ms/step':>9} {'peak GB':>8} {'MFU':>6}")
    for name, run in runs.items():
        mfu = f"{flops * run['tokens_per_s'] / peak:.1%}" if peak else "n/a"
        print(f"{name:<10} {run['precision']:>9} {run['tokens_per_s']:>10,.0f} {run['ms_per_step']:>9.1f} "
              f"{run['peak_memory_gb']:>8.2f} {mfu:>6}")
    print(f"speed-up over the baseline: {runs['optimized']['tokens_per_s'] / runs['baseline']['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
