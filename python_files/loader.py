"""Batches for language modelling: windows of a token file, random for training and spread
evenly for validation.

A window of `context_length + 1` tokens gives `context_length` training examples at once:
the inputs are its first `context_length` tokens, the targets the same tokens shifted by
one, so position t learns to predict token t + 1 from tokens 0..t.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .errors import CourseError


class Batch(NamedTuple):
    inputs: torch.Tensor                 # (batch, context) token ids
    targets: torch.Tensor                # the same windows, one token later
    loss_mask: torch.Tensor | None       # 1 where the target counts (SFT), None: everywhere;
                                         # reinforcement: the answer's weight, of either sign


class Windows:
    """Endless batches of windows from a 1-D array of token ids (often a memmap); subclasses
    choose where the windows start (`window_starts`).

    With `loss_mask` (an array of 0/1 aligned with `tokens`), each batch carries the mask of
    its targets: supervised fine-tuning learns only from the assistant's tokens. With `starts`,
    windows begin only there (at conversation starts, so no answer is seen without its question).

    Batches are numbered over all the processes of a run: with `world_size` processes, process
    `rank` reads batches rank, rank + world_size, ... So the batches do not depend on how many
    processes share the run, and a resumed run continues with the right batch by setting one
    number (`seek`), whatever its number of processes.
    """

    def __init__(self, tokens: np.ndarray, context_length: int, batch_size: int,
                 device: str | torch.device = "cpu", loss_mask: np.ndarray | None = None,
                 starts: np.ndarray | None = None, rank: int = 0, world_size: int = 1):
        if len(tokens) < context_length + 1:
            raise CourseError(f"The token file has {len(tokens)} tokens, fewer than one window of "
                              f"{context_length + 1}: use more text or a shorter context_length.")
        self.tokens = tokens
        self.loss_mask = loss_mask
        self.starts = None if starts is None else starts[starts <= len(tokens) - context_length - 1]
        self.context_length = context_length
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.next_index = rank      # the number, among all processes' batches, of our next one

    def seek(self, batches_drawn: int) -> None:
        """Continue a run in which all processes together have drawn `batches_drawn` batches."""
        self.next_index = batches_drawn + self.rank

    def window_starts(self, index: int) -> np.ndarray:
        """Where the windows of batch number `index` start."""
        raise NotImplementedError

    def next_batch(self) -> Batch:
        """Inputs and targets, each (batch_size, context_length) int64 on the device."""
        starts = self.window_starts(self.next_index)
        self.next_index += self.world_size
        windows = self.to_device(self.windows(self.tokens, starts))
        mask = None
        if self.loss_mask is not None:
            mask = self.to_device(self.windows(self.loss_mask, starts))[:, 1:]
        return Batch(windows[:, :-1], windows[:, 1:], mask)

    def report(self) -> dict:
        """Nothing to add to the training log: the windows are data, not measurements."""
        return {}

    def windows(self, array: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        length = self.context_length + 1
        return torch.from_numpy(np.stack([array[s:s + length] for s in starts]).astype(np.int64))

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            # page-locked memory lets the copy run asynchronously while the GPU keeps working
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch


class RandomWindows(Windows):
    """Training batches: windows at random places, batch number k drawn with a random generator
    seeded by (seed, k) (the run's seed: see seeds.py).

    With `anneal` = (batch, token), batches from number `batch` on draw their windows from token
    `token` to the end only: pretraining ends on the text written there (see
    PretrainConfig.anneal_on_docs).
    """

    def __init__(self, tokens: np.ndarray, context_length: int, batch_size: int,
                 device: str | torch.device = "cpu", *, seed: int, loss_mask: np.ndarray | None = None,
                 starts: np.ndarray | None = None, rank: int = 0, world_size: int = 1,
                 anneal: tuple[int, int] | None = None):
        super().__init__(tokens, context_length, batch_size, device, loss_mask, starts, rank, world_size)
        if anneal and len(tokens) - anneal[1] < context_length + 1:
            raise CourseError(f"The token file has {len(tokens) - anneal[1]} tokens to anneal on, fewer "
                              f"than one window of {context_length + 1}: raise data.docs_copies and run "
                              f"02_pretrain_data again, or turn pretrain.anneal_on_docs off.")
        self.seed = seed
        self.anneal = anneal

    def window_starts(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])
        if self.starts is not None:
            return rng.choice(self.starts, size=self.batch_size)
        first_token = 0
        if self.anneal:
            first_annealing_batch, annealing_from_token = self.anneal
            if index >= first_annealing_batch:
                first_token = annealing_from_token
        return rng.integers(first_token, len(self.tokens) - self.context_length, size=self.batch_size)


class ValidationWindows(Windows):
    """Validation batches: `batches` batches of windows spread evenly over the token file (over
    `starts`, where given), the same at every evaluation and whatever the run's seed. They
    measure, they are not part of what the run draws: runs of two seeds are compared on the
    same text. Batch k holds windows k * batch_size, ... of the spread (after the last, the first
    again).
    """

    def __init__(self, tokens: np.ndarray, context_length: int, batch_size: int, batches: int,
                 device: str | torch.device = "cpu", loss_mask: np.ndarray | None = None,
                 starts: np.ndarray | None = None, rank: int = 0, world_size: int = 1):
        super().__init__(tokens, context_length, batch_size, device, loss_mask, starts, rank, world_size)
        self.batches = batches
        last = (len(self.starts) if self.starts is not None else len(tokens) - context_length) - 1
        places = np.linspace(0, last, batches * batch_size).round().astype(np.int64)
        self.spread = self.starts[places] if self.starts is not None else places

    def window_starts(self, index: int) -> np.ndarray:
        batch = index % self.batches
        return self.spread[batch * self.batch_size:(batch + 1) * self.batch_size]
