"""Where each stage keeps its files, and how they are written safely.

Stages talk to each other only through files under one artifacts root:
``artifacts/<profile>/`` in the repository, or ``$LLM_ARTIFACTS/<profile>/`` when that
variable is set (on Colab it points into Google Drive, so the files outlive the session).
Every path of the course comes from `Artifacts`; no notebook builds paths of its own.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import CourseError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Artifacts:
    root: Path
    shown_root: str     # how the root is printed: notebooks never show this machine's folders

    @classmethod
    def for_profile(cls, profile_name: str) -> "Artifacts":
        if os.environ.get("LLM_ARTIFACTS"):
            base, shown = Path(os.environ["LLM_ARTIFACTS"]).expanduser(), "$LLM_ARTIFACTS"
        else:
            base, shown = REPO_ROOT / "artifacts", "artifacts"
        return cls(base / profile_name, f"{shown}/{profile_name}")

    # stages 01 and 02
    def corpus_cache(self, spec: str) -> Path:
        """Where a hub corpus is kept once streamed (see corpus_cache.py)."""
        return self.root / "corpus" / re.sub(r"[^\w.-]+", "_", spec)

    # stage 01
    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def tokenizer(self) -> Path:
        """The production tokenizer, in the `tokenizers` JSON format."""
        return self.tokenizer_dir / "tokenizer.json"

    @property
    def scratch_bpe(self) -> Path:
        """The from-scratch BPE model of notebook 01."""
        return self.tokenizer_dir / "bpe_from_scratch.json"

    # stage 02
    @property
    def pretrain_dir(self) -> Path:
        return self.root / "pretrain"

    def pretrain_tokens(self, split: str) -> Path:
        return self.pretrain_dir / f"{split}.bin"

    @property
    def pretrain_meta(self) -> Path:
        return self.pretrain_dir / "meta.json"

    # stage 05
    @property
    def sft_dir(self) -> Path:
        return self.root / "sft"

    def sft_file(self, split: str, kind: str) -> Path:
        """`kind` is "tokens", "mask" (1 where the model learns) or "starts" (of conversations)."""
        suffix = "" if kind == "tokens" else f"_{kind}"
        return self.sft_dir / f"{split}{suffix}.bin"

    @property
    def sft_meta(self) -> Path:
        return self.sft_dir / "meta.json"

    @property
    def sft_test_questions(self) -> Path:
        return self.sft_dir / "test_questions.jsonl"

    # stages 04 and 06
    def checkpoints(self, stage: str) -> Path:
        """The folder of a training run: "pretrain" or "sft"."""
        return self.root / "checkpoints" / stage

    # stage 07
    @property
    def eval_results(self) -> Path:
        return self.root / "eval" / "results.json"

    def show(self, path: Path) -> str:
        """`path` as printed in a notebook: from the artifacts root, never absolute."""
        return f"{self.shown_root}/{path.relative_to(self.root).as_posix()}"

    def require(self, path: Path, notebook: str) -> Path:
        """`path` if it exists; otherwise one sentence naming the notebook that writes it."""
        if not path.exists():
            raise CourseError(f"{self.show(path)} does not exist yet: run {notebook} first "
                              f"(with the same LLM_PROFILE).")
        return path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it to `path` only if the block succeeds.

    A run interrupted while writing leaves the old file (or none), never half a file:
    `os.replace` is atomic on POSIX and Windows when both names are on the same disk.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
