"""Artifacts small enough for the `ci` profile to train on in seconds, for the tests that run
the course's commands in a subprocess."""

from pathlib import Path

import torch

from python_files.artifacts import Artifacts
from python_files.checkpoint import Checkpoints
from python_files.document import Document
from python_files.loader import RandomWindows
from python_files.model import GPT, GPTConfig
from python_files.pretrain_data import open_tokens, prepare_pretraining_data
from python_files.tokenizer import TextTokenizer, save_tokenizer, train_tokenizer
from python_files.train import TrainConfig, train

TEXTS = [f"Function number {i} returns the value {i * i} of the table. " * 3 for i in range(300)]


def tiny_artifacts(root: Path, vocab_size: int = 400, copies: int = 1) -> Artifacts:
    """A tokenizer and token files under `root`/ci, as notebooks 01 and 02 would leave them
    (each training document written `copies` times)."""
    artifacts = Artifacts(root / "ci", "artifacts/ci")
    save_tokenizer(train_tokenizer(TEXTS, vocab_size), artifacts.tokenizer)
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    documents = [Document(f"d{i}", text, "test") for i, text in enumerate(TEXTS)]
    prepare_pretraining_data(documents, tokenizer, artifacts, "test", vocab_size, val_fraction=0.1, workers=1,
                             train_copies={"test": copies} if copies > 1 else None)
    return artifacts


def tiny_fine_tuned_model(artifacts: Artifacts) -> GPT:
    """A tiny model trained for 4 steps on the token files, saved as the fine-tuned checkpoint
    (checkpoints/sft/): the same weights, and the same answers, every run."""
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    tokens = open_tokens(artifacts, "train")
    torch.manual_seed(0)
    model = GPT(GPTConfig(tokenizer.vocab_size, context_length=64, n_layer=1, n_head=2, n_embd=32))
    train(model, RandomWindows(tokens, 64, 8, seed=0), lambda: RandomWindows(tokens, 64, 8, seed=0),
          TrainConfig(max_steps=4, learning_rate=1e-3, warmup_steps=1, eval_interval=4, eval_batches=1),
          Checkpoints(artifacts.checkpoints("sft")), progress=False, trained_on={"tokenizer": tokenizer.sha256},
          seed=0, stage="sft")
    return model
