"""Artifacts small enough for the `ci` profile to train on in seconds, for the tests that run
the course's commands in a subprocess."""

from pathlib import Path

from python_files.artifacts import Artifacts
from python_files.document import Document
from python_files.pretrain_data import prepare_pretraining_data
from python_files.tokenizer import TextTokenizer, save_tokenizer, train_tokenizer

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
