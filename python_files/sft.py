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
from .device import default_device
from .distributed import Distributed
from .errors import sentence_on_error
from .pretrain_data import check_made_with, check_same_seed
from .profiles import Profile, active_profile
from .seeds import seed_for
from .sft_data import conversation_batches, conversation_validation, fine_tuning_context, read_sft_meta
from .tokenizer import TextTokenizer
from .train import TrainResult, run_from_terminal, train


def finetune(profile: Profile, artifacts: Artifacts, device: torch.device | None = None,
             progress: bool = True, distributed: Distributed = Distributed(),
             checkpoints: Checkpoints | None = None) -> TrainResult:
    """Start from the best pretraining checkpoint (or resume checkpoints/sft/last.pt, or the
    last.pt of `checkpoints`: benchmarks/sft_settings.py compares settings in folders of its own)."""
    device = device or default_device()
    meta = read_sft_meta(artifacts)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    check_made_with(tokenizer, meta, "fine-tuning files in sft/", "05_sft_data")
    check_same_seed(meta, profile.seed, "fine-tuning files in sft/", "05_sft_data")
    pretrained = artifacts.require(Checkpoints(artifacts.checkpoints("pretrain")).best, "04_pretraining")
    model = load_model(pretrained, device, tokenizer.sha256)
    trained_on = {"tokenizer": tokenizer.sha256, "fine-tuning files": fingerprint(meta),
                  "pretrained model": file_sha256(pretrained)}
    config, context = profile.sft, fine_tuning_context(profile.model, model, bool(profile.start_from))
    shards = {"rank": distributed.rank, "world_size": distributed.world_size}
    return train(model, fine_tuning_batches(profile, artifacts, meta, context, device, distributed),
                 lambda: conversation_validation(artifacts, meta, context, config.batch_size,
                                                 config.eval_batches, device, **shards),
                 config, checkpoints or Checkpoints(artifacts.checkpoints("sft")),
                 progress=progress, distributed=distributed, trained_on=trained_on,
                 seed=profile.seed, stage="sft")


def fine_tuning_batches(profile: Profile, artifacts: Artifacts, meta: dict, context_length: int, device,
                        distributed: Distributed = Distributed()):
    """The windows of conversations fine-tuning trains on, in the order the profile's seed draws them."""
    return conversation_batches(artifacts, meta, context_length, profile.sft.batch_size, device,
                                seed_for(profile.seed, "fine-tuning batches"), distributed.rank,
                                distributed.world_size)


@sentence_on_error
def main() -> None:
    """Fine-tuning from a terminal; under torchrun, one process per device."""
    run_from_terminal(finetune, active_profile())


if __name__ == "__main__":
    main()
