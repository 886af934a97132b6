"""The GPU paths, run only where CUDA is present (skipped elsewhere): resume on the GPU, fp16
with loss scaling (the T4's precision), bf16, and torch.compile."""

import numpy as np
import pytest
import torch

from python_files.checkpoint import Checkpoints, load_checkpoint
from python_files.loader import RandomWindows
from python_files.model import GPT, GPTConfig
from python_files.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CONFIG = GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, n_embd=16)
TOKENS = (np.arange(4000) * 7 % 64).astype(np.uint16)


def cuda_run(folder, precision="fp32", compile=False, interrupt_at=None, max_steps=8):
    torch.manual_seed(0)
    model = GPT(CONFIG).cuda()
    batches = RandomWindows(TOKENS, 16, 4, device="cuda", seed=0)
    drawn = {"n": 0}
    next_batch = batches.next_batch

    def interrupting():
        drawn["n"] += 1
        if drawn["n"] == interrupt_at:
            raise KeyboardInterrupt
        return next_batch()

    batches.next_batch = interrupting
    config = TrainConfig(max_steps=max_steps, learning_rate=1e-2, warmup_steps=2, eval_interval=4,
                         eval_batches=2, precision=precision, compile=compile)
    result = train(model, batches, lambda: RandomWindows(TOKENS, 16, 4, device="cuda", seed=99), config,
                   Checkpoints(folder), progress=False, seed=0, stage="pretrain")
    return model, result


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_an_interrupted_gpu_run_resumes_to_the_same_weights(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    straight, _ = cuda_run(tmp_path / "straight", precision)
    with pytest.raises(KeyboardInterrupt):
        cuda_run(tmp_path / "resumed", precision, interrupt_at=6)
    resumed, result = cuda_run(tmp_path / "resumed", precision)
    assert result.step == 8
    for name, weights in straight.state_dict().items():
        assert torch.equal(weights, resumed.state_dict()[name]), name


def test_fp16_saves_and_restores_the_loss_scale(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        cuda_run(tmp_path, "fp16", interrupt_at=6)
    saved = load_checkpoint(tmp_path / "last.pt")["scaler"]
    assert saved["scale"] > 0 and "_growth_tracker" in saved
    _, result = cuda_run(tmp_path, "fp16")
    assert result.step == 8 and load_checkpoint(tmp_path / "last.pt")["scaler"]["scale"] > 0


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_training_lowers_the_loss(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    _, result = cuda_run(tmp_path, precision, max_steps=40)
    assert result.best_val_loss < np.log(CONFIG.vocab_size) - 1.0


def test_a_compiled_model_trains_and_resumes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        cuda_run(tmp_path, "bf16" if torch.cuda.is_bf16_supported() else "fp16", compile=True, interrupt_at=6)
    _, result = cuda_run(tmp_path, "bf16" if torch.cuda.is_bf16_supported() else "fp16", compile=True)
    assert result.step == 8
    assert "_orig_mod" not in "".join(load_checkpoint(tmp_path / "last.pt")["model"]), "weights saved unwrapped"
