"""Where each stage keeps its files, and how they are written safely.

Stages talk to each other only through files under one artifacts root:
``artifacts/<profile>/`` in the repository, or ``$LLM_ARTIFACTS/<profile>/`` when that
variable is set (on Colab it points into Google Drive, so the files outlive the session; a
relative path is taken from the course folder, wherever the notebook runs).
Every path of the course comes from `Artifacts`; no notebook builds paths of its own.

A stage that writes a folder holds its lock (`exclusive`) while it does: a second run on the
same folder stops with one sentence instead of mixing its files with the first one's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import CourseError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Artifacts:
    root: Path
    shown_root: str     # how the root is printed: notebooks never show this machine's folders

    @classmethod
    def for_profile(cls, profile_name: str) -> "Artifacts":
        if os.environ.get("LLM_ARTIFACTS"):
            base, shown = REPO_ROOT / Path(os.environ["LLM_ARTIFACTS"]).expanduser(), "$LLM_ARTIFACTS"
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

    def sft_questions(self, split: str) -> Path:
        """The questions of `split` with their reference answers (tests and rewards check them)."""
        return self.sft_dir / f"{split}_questions.jsonl"

    # stages 04 and 06
    def checkpoints(self, stage: str) -> Path:
        """The folder of a training run: "pretrain", "sft" or "reinforce"."""
        return self.root / "checkpoints" / stage

    # stage 07
    @property
    def eval_results(self) -> Path:
        return self.root / "eval" / "results.json"

    def benchmark_row(self, benchmark: str, row: str) -> "Artifacts":
        """The artifacts of one row of a benchmark that trains (benchmarks/<benchmark>/<row>/ under
        this root), with this run's tokenizer copied in: each row makes its own files from it."""
        artifacts = Artifacts(self.root / "benchmarks" / benchmark / row,
                              f"{self.shown_root}/benchmarks/{benchmark}/{row}")
        if not artifacts.tokenizer_dir.exists():
            shutil.copytree(self.require(self.tokenizer_dir, "01_tokenizer"), artifacts.tokenizer_dir,
                            ignore=shutil.ignore_patterns(".lock"))
        return artifacts

    def show(self, path: Path) -> str:
        """`path` as printed in a notebook: from the artifacts root, never absolute."""
        return f"{self.shown_root}/{path.relative_to(self.root).as_posix()}"

    def require(self, path: Path, notebook: str) -> Path:
        """`path` if it exists; otherwise one sentence naming the notebook that writes it."""
        if not path.exists():
            raise CourseError(f"{self.show(path)} does not exist yet: run {notebook} first "
                              f"(with the same LLM_PROFILE).")
        return path

    def read_json(self, path: Path, notebook: str) -> dict:
        """A JSON file that `notebook` writes (a meta.json): one sentence when missing or cut short."""
        try:
            return json.loads(self.require(path, notebook).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CourseError(f"{self.show(path)} is damaged (not complete JSON): run {notebook} "
                              f"again.") from None

    def open_array(self, path: Path, dtype, length: int, notebook: str) -> np.ndarray:
        """The `length` numbers of `dtype` in `path`, memory-mapped read-only; one sentence when the
        file is missing, or its size is not what `notebook` wrote (cut short, or of another run)."""
        dtype = np.dtype(dtype)
        size = self.require(path, notebook).stat().st_size
        if size != length * dtype.itemsize:
            raise CourseError(f"{self.show(path)} holds {size:,} bytes, not the {length:,} {dtype.name} "
                              f"values its meta.json describes (cut short, or from another run): run "
                              f"{notebook} again.")
        if length == 0:
            return np.zeros(0, dtype)   # the operating system cannot map an empty file
        return np.memmap(self.local_copy(path), dtype=dtype, mode="r", shape=(length,))

    def local_copy(self, path: Path) -> Path:
        """`path`; or, with LLM_LOCAL_COPIES set (Colab's setup cell sets it), a copy of it in
        that folder on the machine's own disk. On Colab the artifacts live on Google Drive, a
        network mount, and training reads random windows of the token files: from Drive that is
        slow. The copy is made once: one of the same size and modification time is reused."""
        folder = os.environ.get("LLM_LOCAL_COPIES")
        if not folder:
            return path
        copy = Path(folder) / path.relative_to(self.root)
        original = path.stat()
        if not copy.exists() or (copy.stat().st_size, copy.stat().st_mtime) != (original.st_size, original.st_mtime):
            copy.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(copy) as temporary:
                shutil.copy2(path, temporary)     # copy2 keeps the modification time
        return copy


NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


# a full disk, a quota, a file too large for the file system, too many open files
OUT_OF_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EMFILE, errno.ENFILE}


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn "permission denied", "read-only file system" or "no space left" while writing `path`
    into one sentence."""
    try:
        yield
    except OSError as error:
        if error.errno in OUT_OF_ROOM:
            raise CourseError(out_of_room(path, error.strerror)) from None
        if error.errno not in NOT_WRITABLE:
            raise
        raise CourseError(f"Cannot write {path.name} in {path.parent.name}/ ({error.strerror}): make "
                          f"the artifacts folder writable, or set LLM_ARTIFACTS to a folder you can "
                          f"write to.") from None


def out_of_room(path: Path, reason: str) -> str:
    """The sentence for a write of `path` that failed for want of room (`reason`, the system's words)."""
    free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
    return (f"Could not write {path.name} in {path.parent.name}/ ({reason}; {free / 1e6:,.0f} MB free on "
            f"that disk): free space there (or close other programs' files) and run it again; the "
            f"previous {path.name}, if there was one, is kept as it was.")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it to `path` only if the block succeeds.

    A run interrupted while writing leaves the old file (or none), never half a file:
    `os.replace` is atomic on POSIX and Windows when both names are on the same disk.
    """
    temporary = temporary_path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield temporary
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


def temporary_path(path: Path) -> Path:
    """Where `atomic_path` writes `path` before the rename (a hidden name: `.train.bin.tmp`)."""
    return path.with_name(f".{path.name}.tmp")


def remove_stale_temporaries(folder: Path) -> None:
    """Delete what writers killed mid-way left in `folder` (call it while holding its lock)."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def exclusive(folder: Path, shown: str) -> Iterator[None]:
    """Hold the lock of `folder` (printed as `shown`) while the block writes into it.

    A second run on the same folder, from another kernel or terminal, stops with one sentence.
    The operating system releases the lock when the process ends, even when it is killed, so
    no stale lock is ever left behind.
    """
    lock_file = folder / ".lock"
    with writing(lock_file):
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "a+b")
    with handle:
        if not try_lock(handle):
            raise CourseError(f"Another run is writing {shown}/ (a notebook kernel or a terminal that "
                              f"is still busy): let it finish or stop it, then run this again.")
        yield


def try_lock(handle) -> bool:
    """Take the file's lock without waiting; False when another process holds it. File systems
    without locks (some network mounts) are used unlocked."""
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno not in {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}
    return True
