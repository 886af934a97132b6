"""Stage 06: fine-tune the pretrained model on the conversations of stage 05.

The loop is the pretraining loop; only the batches differ: windows start at conversation
starts and carry the loss mask, so the model learns the assistant's turns only.

    LLM_PROFILE=cpu python -m python_files.sft
    LLM_PROFILE=gpu torchrun --standalone --nproc_per_node=8 -m python_files.sft
"""

from __future__ import annotations

import torch

from .artifacts import Artifacts
from .checkpoint import Checkpoints, file_sha256, fingerprint, load_model
from .device import compile_enabled, default_device
from .distributed import Distributed
from .errors import sentence_on_error
from .loader import VALIDATION_SEED, RandomWindows
from .pretrain_data import check_made_with
from .profiles import Profile
from .sft_data import open_sft_split, read_sft_meta
from .tokenizer import TextTokenizer
from .train import TrainConfig, TrainResult, run_from_terminal, train


def sft_config(profile: Profile, device: torch.device | None = None) -> TrainConfig:
    return TrainConfig(max_steps=profile.sft_steps, learning_rate=profile.sft_learning_rate,
                       warmup_steps=max(1, profile.sft_steps // 20),
                       grad_accum_steps=profile.grad_accum_steps,
                       eval_interval=max(1, profile.sft_steps // 8), eval_batches=profile.eval_batches,
                       weight_decay=0.0, precision=profile.precision,
                       compile=compile_enabled(profile.compile, device or default_device()))


def conversation_windows(artifacts: Artifacts, split: str, meta: dict, profile: Profile,
                         device: torch.device, seed: int, distributed: Distributed) -> RandomWindows:
    tokens, mask, starts = open_sft_split(artifacts, split, meta)
    return RandomWindows(tokens, profile.context_length, profile.batch_size, device, seed=seed,
                         loss_mask=mask, starts=starts, rank=distributed.rank,
                         world_size=distributed.world_size)


def finetune(profile: Profile, artifacts: Artifacts, device: torch.device | None = None,
             progress: bool = True, distributed: Distributed = Distributed(),
             checkpoints: Checkpoints | None = None) -> TrainResult:
    """Start from the best pretraining checkpoint (or resume checkpoints/sft/last.pt, or the
    last.pt of `checkpoints`: benchmarks/sft_settings.py compares settings in folders of its own)."""
    device = device or default_device()
    meta = read_sft_meta(artifacts)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    check_made_with(tokenizer, meta, "fine-tuning files in sft/", "05_sft_data")
    pretrained = artifacts.require(Checkpoints(artifacts.checkpoints("pretrain")).best, "04_pretraining")
    model = load_model(pretrained, device, tokenizer.sha256)
    trained_on = {"tokenizer": tokenizer.sha256, "fine-tuning files": fingerprint(meta),
                  "pretrained model": file_sha256(pretrained)}
    return train(model, conversation_windows(artifacts, "train", meta, profile, device, 2, distributed),
                 lambda: conversation_windows(artifacts, "val", meta, profile, device, VALIDATION_SEED,
                                              distributed),
                 sft_config(profile, device), checkpoints or Checkpoints(artifacts.checkpoints("sft")),
                 progress=progress,
                 distributed=distributed, trained_on=trained_on)


@sentence_on_error
def main() -> None:
    """Fine-tuning from a terminal; under torchrun, one process per device."""
    run_from_terminal(finetune)


if __name__ == "__main__":
    main()
