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
from .loader import RandomWindows, ValidationWindows
from .model import GPT, GPTConfig
from .pretrain_data import check_made_with, check_same_seed, open_tokens, read_pretrain_meta
from .profiles import PretrainConfig, Profile, active_profile
from .sampling import generate
from .seeds import generator_for, seed_for
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


def sampler(tokenizer: TextTokenizer, prompt: str, precision: str = "auto", max_new_tokens: int = 40):
    """A function that completes `prompt` with a model's most likely tokens (greedy, as notebook 03
    writes it), for a look at it during training: with no randomness in the look, what changes
    from one look to the next is the model alone."""
    prompt_ids = tokenizer.encode(prompt)

    def complete(model: GPT) -> str:
        return prompt + tokenizer.decode(generate(model, prompt_ids, max_new_tokens, temperature=0,
                                                  precision=precision))
    return complete


def initial_model(profile: Profile, vocab_size: int, device: torch.device) -> GPT:
    """The model pretraining starts from: the profile's, with weights drawn from its seed (the
    same in every process)."""
    return GPT(model_config(profile, vocab_size), generator_for(profile.seed, "initial weights")).to(device)


def pretraining_batches(profile: Profile, tokens, device: torch.device, anneal: tuple[int, int] | None = None,
                        distributed: Distributed = Distributed()) -> RandomWindows:
    """The windows pretraining trains on, in the order the profile's seed draws them."""
    return RandomWindows(tokens, profile.model.context_length, profile.pretrain.batch_size, device,
                         seed=seed_for(profile.seed, "pretraining batches"), anneal=anneal,
                         rank=distributed.rank, world_size=distributed.world_size)


def validation_batches(profile: Profile, tokens, device: torch.device,
                       distributed: Distributed = Distributed()) -> ValidationWindows:
    """The windows every evaluation of pretraining reads (see loader.ValidationWindows)."""
    return ValidationWindows(tokens, profile.model.context_length, profile.pretrain.batch_size,
                             profile.pretrain.eval_batches, device, rank=distributed.rank,
                             world_size=distributed.world_size)


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
    check_same_seed(meta, profile.seed, "token files in pretrain/", "02_pretrain_data")
    train_tokens, val_tokens = open_tokens(artifacts, "train", meta), open_tokens(artifacts, "val", meta)
    model = initial_model(profile, meta["vocab_size"], device)
    config = profile.pretrain
    anneal = annealing(config, meta)
    return train(model, pretraining_batches(profile, train_tokens, device, anneal, distributed),
                 lambda: validation_batches(profile, val_tokens, device, distributed),
                 config, Checkpoints(artifacts.checkpoints("pretrain")),
                 token_bytes=torch.tensor(tokenizer.token_bytes(), device=device),
                 sample=sampler(tokenizer, config.sample_prompt, config.precision),
                 progress=progress, distributed=distributed, seed=profile.seed, stage="pretrain",
                 trained_on={"tokenizer": tokenizer.sha256, "token files": fingerprint(meta),
                             # only when on, so that runs from before the option still resume
                             **({"annealing on the documentation": anneal} if anneal else {})})


@sentence_on_error
def main() -> None:
    """Pretraining from a terminal; under torchrun, one process per device."""
    run_from_terminal(pretrain, active_profile())


if __name__ == "__main__":
    main()
