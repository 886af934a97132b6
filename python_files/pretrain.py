"""Stage 04: pretrain the GPT on the token files of stage 02, with the sizes of a profile.

Notebook 04 calls `pretrain`; the same run works from a terminal, on one device or several:

    LLM_PROFILE=cpu python -m python_files.pretrain
    LLM_PROFILE=gpu torchrun --standalone --nproc_per_node=8 -m python_files.pretrain
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .artifacts import Artifacts
from .checkpoint import Checkpoints, fingerprint
from .corpus import PYTHON_DOCS
from .device import default_device
from .distributed import Distributed
from .errors import CourseError, sentence_on_error
from .loader import VALIDATION_SEED, RandomWindows
from .model import GPT, GPTConfig
from .pretrain_data import check_made_with, open_tokens, read_pretrain_meta
from .profiles import PretrainConfig, Profile, active_profile
from .sampling import generate
from .tokenizer import TextTokenizer
from .train import TrainResult, decay_steps, run_from_terminal, train


def model_config(profile: Profile, vocab_size: int) -> GPTConfig:
    """The profile's model, with the vocabulary the tokenizer really has."""
    return replace(profile.model, vocab_size=vocab_size)


def annealing(config: PretrainConfig, meta: dict) -> tuple[int, int] | None:
    """For `anneal_on_docs`: the first batch of the decay, and where the documentation's repeats
    begin in train.bin (RandomWindows' `anneal`); None without it."""
    if not config.anneal_on_docs:
        return None
    if config.schedule != "wsd":
        raise CourseError(f"anneal_on_docs needs schedule='wsd' (it anneals during its final decay), and "
                          f"pretraining's schedule is {config.schedule!r}: set pretrain.schedule=wsd or turn "
                          f"pretrain.anneal_on_docs off.")
    if meta["corpus"] == PYTHON_DOCS:
        raise CourseError("anneal_on_docs needs the documentation mixed into another corpus, and the "
                          "corpus is the documentation alone: set LLM_CORPUS=python-docs+packages (or a "
                          "hub corpus) or turn pretrain.anneal_on_docs off.")
    if not meta.get("copies_written"):
        raise CourseError("anneal_on_docs reads the documentation's repeats, and the token files have "
                          "none: set data.docs_copies to 2 or more and run 02_pretrain_data again.")
    if "repeats_start_token" not in meta:
        raise CourseError("The token files were written by an older version of the course (they do not "
                          "say where the documentation's repeats begin): run 02_pretrain_data again.")
    # batches are numbered over all processes, grad_accum_steps of them a step
    return (config.max_steps - decay_steps(config)) * config.grad_accum_steps, meta["repeats_start_token"]


def sampler(tokenizer: TextTokenizer, prompt: str, max_new_tokens: int = 40):
    """A function that completes `prompt` with a model, for a look at it during training."""
    prompt_ids = tokenizer.encode(prompt)

    def complete(model: GPT) -> str:
        return prompt + tokenizer.decode(generate(model, prompt_ids, max_new_tokens,
                                                  temperature=0.8, top_k=50, seed=0))
    return complete


def pretrain(profile: Profile, artifacts: Artifacts, device: torch.device | None = None,
             progress: bool = True, distributed: Distributed = Distributed()) -> TrainResult:
    """Train a fresh model (or resume the run in checkpoints/pretrain/) on the token files."""
    if profile.start_from:
        raise CourseError(f"The {profile.name} profile starts from OpenAI's {profile.start_from} and "
                          f"has no pretraining of its own: begin with notebook 05_sft_data.")
    device = device or default_device()
    meta = read_pretrain_meta(artifacts)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    check_made_with(tokenizer, meta, "token files in pretrain/", "02_pretrain_data")
    train_tokens, val_tokens = open_tokens(artifacts, "train", meta), open_tokens(artifacts, "val", meta)
    torch.manual_seed(0)   # the same initial weights in every process
    model = GPT(model_config(profile, meta["vocab_size"])).to(device)
    shards = {"rank": distributed.rank, "world_size": distributed.world_size}
    config, context = profile.pretrain, profile.model.context_length
    anneal = annealing(config, meta)
    train_batches = RandomWindows(train_tokens, context, config.batch_size, device, seed=1, anneal=anneal, **shards)
    val_split = meta["splits"]["val"]
    return train(model, train_batches,
                 lambda: RandomWindows(val_tokens, context, config.batch_size, device, seed=VALIDATION_SEED, **shards),
                 config, Checkpoints(artifacts.checkpoints("pretrain")),
                 bytes_per_token=val_split["bytes"] / val_split["tokens"],
                 sample=sampler(tokenizer, config.sample_prompt), progress=progress,
                 distributed=distributed,
                 trained_on={"tokenizer": tokenizer.sha256, "token files": fingerprint(meta),
                             # only when on, so that runs from before the option still resume
                             **({"annealing on the documentation": anneal} if anneal else {})})


@sentence_on_error
def main() -> None:
    """Pretraining from a terminal; under torchrun, one process per device."""
    run_from_terminal(pretrain, active_profile())


if __name__ == "__main__":
    main()
