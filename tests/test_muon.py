"""Muon with the Newton-Schulz format as a parameter: torch.optim.Muon's step in bf16, the
same direction in fp32, and the device's fast format chosen by measurement."""

import pytest
import torch

from python_files import muon as muon_module
from python_files.model import GPT, GPTConfig
from python_files.muon import Muon, newton_schulz, newton_schulz_format
from python_files.train import TrainConfig, make_optimizer


def matrices(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(24, 8, generator=generator), torch.randn(8, 24, generator=generator),
            torch.randn(16, 16, generator=generator)]


def run_steps(optimizer_class, steps: int = 3, **settings) -> list[torch.Tensor]:
    """`steps` steps on a tall, a wide and a square matrix, with fixed gradients per step."""
    weights = [torch.nn.Parameter(m) for m in matrices(0)]
    optimizer = optimizer_class(weights, lr=0.02, weight_decay=0.1, **settings)
    for step in range(steps):
        for weight, gradient in zip(weights, matrices(step + 1)):
            weight.grad = gradient
        optimizer.step()
    return [w.detach() for w in weights]


def test_in_bf16_the_step_is_torch_optim_muons_exactly():
    ours = run_steps(Muon, newton_schulz_dtype=torch.bfloat16)
    torchs = run_steps(torch.optim.Muon, adjust_lr_fn="match_rms_adamw")
    for a, b in zip(ours, torchs):
        assert torch.equal(a, b)


def test_fp32_moves_the_weights_like_bf16():
    start = matrices(0)
    in_fp32 = run_steps(Muon, newton_schulz_dtype=torch.float32)
    in_bf16 = run_steps(Muon, newton_schulz_dtype=torch.bfloat16)
    for before, a, b in zip(start, in_fp32, in_bf16):
        moved_fp32, moved_bf16 = a - before, b - before
        # bf16 keeps 8 bits of mantissa: the two steps agree to about 1%, and are not equal
        relative = ((moved_fp32 - moved_bf16).norm() / moved_bf16.norm()).item()
        assert 0 < relative < 0.05


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_newton_schulz_brings_every_singular_value_near_one(dtype):
    G = torch.randn(32, 12, generator=torch.Generator().manual_seed(3)) @ torch.diag(torch.logspace(-3, 0, 12))
    singular_values = torch.linalg.svdvals(newton_schulz(G, dtype=dtype).float())
    assert singular_values.min() > 0.3 and singular_values.max() < 1.5
    assert newton_schulz(G, dtype=dtype).dtype == dtype


def test_the_fast_format_is_measured_on_a_cpu_and_known_on_a_gpu(monkeypatch):
    newton_schulz_format.cache_clear()
    try:
        for bf16_seconds, expected in ((10.0, "fp32"), (0.9, "fp32"), (0.5, "bf16")):
            monkeypatch.setattr(muon_module, "matmul_seconds",
                                lambda dtype, s=bf16_seconds: s if dtype == torch.bfloat16 else 1.0)
            newton_schulz_format.cache_clear()
            assert newton_schulz_format("cpu") == expected
        assert newton_schulz_format("mps") == "fp32"
        for capability, expected in (((8, 0), "bf16"), ((7, 5), "fp32")):   # an A100, a T4
            monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args, c=capability: c)
            newton_schulz_format.cache_clear()
            assert newton_schulz_format("cuda") == expected
    finally:
        newton_schulz_format.cache_clear()


@pytest.mark.parametrize("setting, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_the_training_config_sets_the_format(setting, dtype):
    model = GPT(GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, n_embd=16))
    config = TrainConfig(1, 1e-3, 0, optimizer="muon", newton_schulz=setting)
    muon, _ = make_optimizer(model, config, torch.device("cpu")).optimizers
    assert muon.newton_schulz_dtype == dtype


def test_muon_refuses_a_vector():
    with pytest.raises(ValueError, match="only weight matrices"):
        Muon([torch.nn.Parameter(torch.zeros(4))])
