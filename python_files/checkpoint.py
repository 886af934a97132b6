"""Checkpoints: where a run keeps them, how they are written and read, and what they were trained on.

A training run owns one folder::

    last.pt          the latest state: weights, optimizer, loss scaler, step, random state
    last.pt.sha256   the checksum of last.pt, to tell a damaged file from a good one
    best.pt          the state at the lowest validation loss (and best.pt.sha256)
    log.jsonl        one line per step, which the plots read

Every checkpoint also records what the run was trained *on* and *with*: the model's config, the
training settings, and a fingerprint of each input (the tokenizer, the token files, the
pretrained model). A run resumes only when all of them are the same as before; otherwise it
stops with one sentence that names what changed, so a changed learning rate or a re-made corpus
never continues an old run unnoticed.

Files are written under a temporary name and renamed (see `atomic_path`), and the checksum is
recorded before the rename, so a run killed at any moment leaves a good `last.pt` or the
previous one, never half a file that loads as garbage.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .artifacts import atomic_path, atomic_write_text, out_of_room
from .errors import CourseError, library_reason
from .model import GPT, GPTConfig

# Settings that change how often a run reports, not what it computes: a resumed run may change them.
BOOKKEEPING_SETTINGS = {"eval_interval", "eval_batches", "sample_interval", "compile"}


def shown(path: Path) -> str:
    """A path as messages print it: from the `checkpoints/` folder on (else its last two parts),
    never absolute."""
    parts = path.parts
    start = max((i for i, part in enumerate(parts) if part == "checkpoints"), default=max(0, len(parts) - 2))
    return Path(*parts[start:]).as_posix()


@dataclass
class Checkpoints:
    """The files of one run, in one folder."""

    folder: Path

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    @property
    def log(self) -> Path:
        return self.folder / "log.jsonl"


# --- what a run was trained on ---------------------------------------------------------------

def fingerprint(value) -> str:
    """A short hash of a JSON-like value (a meta.json, say): equal values, equal fingerprints."""
    text = json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RunRecord:
    """What a run is trained on and with; a checkpoint stores it, a resumed run compares it."""

    model_config: dict
    train_config: dict
    trained_on: dict        # input name -> fingerprint, e.g. {"tokenizer": "9f2c..."}

    @classmethod
    def of(cls, model_config: GPTConfig, train_config, trained_on: dict | None = None) -> "RunRecord":
        # through JSON, so that tuples and lists compare equal after a round trip through a file
        as_json = json.loads(json.dumps([asdict(model_config), asdict(train_config), trained_on or {}]))
        return cls(*as_json)

    def changes_from(self, saved: "RunRecord") -> list[str]:
        """What differs from the `saved` run, in words ("learning_rate 0.002 -> 0.001")."""
        changes = [f"the {name}" for name in sorted(set(self.trained_on) | set(saved.trained_on))
                   if self.trained_on.get(name) != saved.trained_on.get(name)]
        for now, before, ignored in ((self.model_config, saved.model_config, set()),
                                     (self.train_config, saved.train_config, BOOKKEEPING_SETTINGS)):
            changes += [f"{key} {before.get(key)} -> {now.get(key)}" for key in sorted(set(now) | set(before))
                        if key not in ignored and now.get(key) != before.get(key)]
        return changes


def check_same_run(path: Path, checkpoint: dict, run: RunRecord) -> None:
    """Stop with one sentence when `checkpoint` belongs to a run on other inputs or settings."""
    saved = RunRecord(checkpoint["model_config"], checkpoint["train_config"], checkpoint.get("trained_on", {}))
    changes = run.changes_from(saved)
    if changes:
        raise CourseError(f"{shown(path)} belongs to a run with other inputs or settings "
                          f"({'; '.join(changes)}): delete the folder {shown(path.parent)}/ to train "
                          f"from scratch with the new ones, or restore the old ones to resume.")


def check_tokenizer(path: Path, checkpoint: dict, tokenizer_sha256: str) -> None:
    """Stop when the model in `path` was trained on the ids of another tokenizer."""
    trained_with = checkpoint.get("trained_on", {}).get("tokenizer")
    if trained_with is not None and trained_with != tokenizer_sha256:
        raise CourseError(f"{shown(path)} was trained with another tokenizer than the one in "
                          f"tokenizer/: run the notebooks again from the stage that made the other one "
                          f"(02 for pretraining, 05 for fine-tuning data) with this tokenizer.")


# --- writing ---------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_checksums(path: Path) -> list[str]:
    sidecar = checksum_path(path)
    return sidecar.read_text(encoding="utf-8").split() if sidecar.exists() else []


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically, with its checksum beside it."""
    write_checkpoint(path, lambda temporary: torch.save(state, temporary))


def copy_checkpoint(source: Path, path: Path) -> None:
    """Make `path` a copy of the checkpoint `source` (with its checksum), atomically."""
    write_checkpoint(path, lambda temporary: shutil.copyfile(source, temporary))


def write_checkpoint(path: Path, write: Callable[[Path], object]) -> None:
    """`write` the new file under a temporary name, then swap it in. Until the swap is over the
    checksum file lists the checksums of both, so that a kill at any moment leaves a file that
    matches it."""
    with atomic_path(path) as temporary:
        try:
            write(temporary)
        except RuntimeError as error:
            # torch's writer reports a failed write (a full disk, say) as a RuntimeError of its own
            if "inline_container" not in str(error) and "PytorchStreamWriter" not in str(error):
                raise
            raise CourseError(out_of_room(temporary.with_name(path.name), library_reason(error))) from None
        new = file_sha256(temporary)
        atomic_write_text(checksum_path(path), "\n".join([new, *recorded_checksums(path)]) + "\n")
    atomic_write_text(checksum_path(path), new + "\n")


# --- reading ---------------------------------------------------------------------------------

class DamagedCheckpoint(CourseError):
    """A checkpoint file that is empty, truncated, garbled, or does not match its checksum."""


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, on the CPU (tensors, numbers and strings only: `weights_only`),
    after checking the file against the checksum written with it (when there is one)."""
    if not path.exists():
        raise CourseError(f"{shown(path)} does not exist: train first (notebook 04 or 06).")
    data, verified = read_verified(path)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:   # torch.load raises many kinds on bytes it cannot read
        if verified:   # the bytes are the ones written: not damaged, but not readable by this torch
            raise CourseError(f"{shown(path)} is intact (it matches its checksum) but this PyTorch "
                              f"{torch.__version__} cannot read it ({library_reason(error)}): it was "
                              f"probably saved by another version of PyTorch; load it with that "
                              f"version, or train again with this one.") from None
        why = "the file is empty" if not data else f"not a readable checkpoint: {type(error).__name__}"
        raise damaged(path, why) from None


def read_verified(path: Path) -> tuple[bytes, bool]:
    """The bytes of `path`, read once, and whether a recorded checksum vouches for them. A save
    may be swapping the file and its checksum at this very moment, so a mismatch is read a
    second time before it counts."""
    for _ in range(2):
        data = path.read_bytes()
        recorded = recorded_checksums(path)
        if not recorded or hashlib.sha256(data).hexdigest() in recorded:
            return data, bool(recorded)
    raise damaged(path, "its contents do not match the checksum written with it")


def damaged(path: Path, why: str) -> DamagedCheckpoint:
    advice = ("delete it and run again: training resumes from best.pt" if path.name == "last.pt"
              else f"delete the folder {shown(path.parent)}/ and train again")
    return DamagedCheckpoint(f"{shown(path)} is damaged ({why}): {advice}.")


def load_model(path: Path, device: torch.device | str = "cpu", tokenizer_sha256: str | None = None) -> GPT:
    """The model saved in `path`; with `tokenizer_sha256`, checked to be trained on that tokenizer."""
    checkpoint = load_checkpoint(path)
    if tokenizer_sha256 is not None:
        check_tokenizer(path, checkpoint, tokenizer_sha256)
    model = GPT(GPTConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device)


def load_resumable(checkpoints: Checkpoints) -> tuple[Path, dict] | None:
    """The checkpoint to resume from: last.pt, or best.pt when last.pt is damaged or deleted;
    None for a new run."""
    if not checkpoints.last.exists():
        return (checkpoints.best, load_checkpoint(checkpoints.best)) if checkpoints.best.exists() else None
    try:
        return checkpoints.last, load_checkpoint(checkpoints.last)
    except DamagedCheckpoint as error:
        if not checkpoints.best.exists():
            raise
        try:
            best = load_checkpoint(checkpoints.best)
        except DamagedCheckpoint:
            raise error from None
        # printed, not warned: a warning shows the path of this file on this machine
        print(f"{error} Resuming from best.pt (step {best['step']}).", file=sys.stderr)
        return checkpoints.best, best


# --- the log -----------------------------------------------------------------------------------

def read_log(path: Path) -> list[dict]:
    """The records of a run's log.jsonl, for plots. A half-written last line (a run killed while
    writing it) is skipped; a bad line anywhere else means the file was damaged, and says so."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise CourseError(f"{shown(path)} is damaged at line {number} of {len(lines)} (not a JSON "
                              f"record): move it away and run again (training resumes from last.pt; "
                              f"the plots lose the steps before).") from None
    return records


def open_log(path: Path, step: int):
    """The log, opened for appending the steps after `step`: the lines of later steps, written
    before an interruption, are dropped (the resumed run writes them again); a new run
    (`step` 0) starts an empty log."""
    kept = [json.dumps(r) + "\n" for r in read_log(path) if r["step"] <= step] if path.exists() else []
    atomic_write_text(path, "".join(kept))
    return open(path, "a", encoding="utf-8")
