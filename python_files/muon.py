"""Muon: momentum, then an orthogonalized step, for the blocks' weight matrices.

AdamW scales each weight's step on its own. A gradient matrix is usually dominated by a few
directions, and so is AdamW's step. Muon (Keller Jordan, 2024) takes the momentum-averaged
gradient G = U S V^T and steps along U V^T instead: every singular value set to about 1, so
that every direction learns. U V^T comes from a few Newton-Schulz iterations (matrix products
only, no SVD).

This is the algorithm of `torch.optim.Muon` (with Moonshot's "match_rms_adamw" step size, so
that Muon and AdamW share one learning rate), with one difference: the number format of the
Newton-Schulz products is a parameter. `torch.optim.Muon` always uses bf16, which recent GPUs
compute fast, and which most laptop CPUs (AVX2, no AVX-512 BF16 or AMX instructions) emulate
about ten times slower than fp32: there, a training step with Muon took about four times one
with AdamW alone (`python -m benchmarks.muon_step`). `chosen_format` picks the faster format of
the device; the tests check that in bf16 this optimizer gives exactly `torch.optim.Muon`'s step.
"""

from __future__ import annotations

import functools
import math
import time

import torch

COEFFICIENTS = (3.4445, -4.7750, 2.0315)   # tuned to push singular values from near 0 up fast
FORMATS = {"bf16": torch.bfloat16, "fp32": torch.float32}


def newton_schulz(G: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """About U V^T for G = U S V^T, in `dtype`: each iteration maps every singular value s to
    a s + b s^3 + c s^5, which pushes all of them toward 1 (to between about 0.5 and 1.5)."""
    a, b, c = COEFFICIENTS
    X = G.to(dtype)
    tall = G.size(0) > G.size(1)
    X = X.T if tall else X                      # X X^T is then the smaller square matrix
    X = X / X.norm().clamp(min=1e-7)            # every singular value <= 1 to start
    for _ in range(steps):
        A = X @ X.T
        # X <- a X + (b A + c A A) X, with addmm (beta M + alpha P Q) as torch.optim.Muon does,
        # so that its bf16 results are matched exactly
        X = torch.addmm(X, torch.addmm(A, A, A, beta=b, alpha=c), X, beta=a)
    return X.T if tall else X


def chosen_format(setting: str, device: torch.device) -> str:
    """The format a `newton_schulz` setting means on `device`: itself, or for "auto" the fast one."""
    return newton_schulz_format(device.type) if setting == "auto" else setting


@functools.cache
def newton_schulz_format(device_type: str) -> str:
    """The device's fast format: on CUDA, bf16 from Ampere (sm80) on and fp32 before it (a T4
    emulates bf16); on a CPU, fp32 unless bf16 is measured at least 1.5 times faster on it.

    The measurement (a few products of the size of a small model's matrices, about 50 ms, once
    per process) is what decides, not the CPU's name: bf16 is fast where the CPU has bf16
    instructions (AVX-512 BF16, AMX: look for avx512_bf16 or amx_bf16 among the flags `lscpu`
    prints) and emulated, about ten times slower, elsewhere.
    """
    if device_type == "cuda":
        return "bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp32"
    if device_type != "cpu":
        return "fp32"   # Apple's mps and others: not measured, so the safe format
    seconds = {name: matmul_seconds(FORMATS[name]) for name in FORMATS}
    return "bf16" if seconds["bf16"] * 1.5 < seconds["fp32"] else "fp32"


def matmul_seconds(dtype: torch.dtype, size: int = 256, repeats: int = 5) -> float:
    """The fastest of `repeats` (size x size) products in `dtype`, after one to warm up."""
    # any values will do (a product takes as long whatever they are): no random numbers to draw
    a = torch.linspace(-1.0, 1.0, size * size).reshape(size, size).to(dtype)
    a @ a
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - started)
    return min(times)


class Muon(torch.optim.Optimizer):
    """Muon for 2-D weight matrices; give biases, norms and embeddings to AdamW.

    `newton_schulz_dtype` is the format of the orthogonalization (`newton_schulz_format` picks
    the device's fast one). Weight decay is decoupled, as in AdamW; the step is scaled by
    0.2 * sqrt(max(rows, columns)), which gives each weight about the step AdamW would take.
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 ns_steps: int = 5, newton_schulz_dtype: torch.dtype = torch.bfloat16):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                                  "ns_steps": ns_steps})
        self.newton_schulz_dtype = newton_schulz_dtype
        for group in self.param_groups:
            if any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon takes only weight matrices (2-D): give the others to AdamW.")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, decay, beta = group["lr"], group["weight_decay"], group["momentum"]
            for weight in group["params"]:
                if weight.grad is None:
                    continue
                momentum = self.state[weight].setdefault("momentum_buffer", torch.zeros_like(weight.grad))
                momentum.lerp_(weight.grad, 1 - beta)              # the running average of gradients
                update = weight.grad.lerp(momentum, beta)          # Nesterov: the gradient pulled toward it
                weight.mul_(1 - lr * decay)
                step_size = lr * 0.2 * math.sqrt(max(weight.shape))
                weight.add_(newton_schulz(update, group["ns_steps"], self.newton_schulz_dtype), alpha=-step_size)
