"""Batches for language modelling: random windows of a token file.

A window of `context_length + 1` tokens gives `context_length` training examples at once:
the inputs are its first `context_length` tokens, the targets the same tokens shifted by
one, so position t learns to predict token t + 1 from tokens 0..t.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .errors import CourseError

VALIDATION_SEED = 0   # every evaluation reads the same validation windows


class Batch(NamedTuple):
    inputs: torch.Tensor                 # (batch, context) token ids
    targets: torch.Tensor                # the same windows, one token later
    loss_mask: torch.Tensor | None       # 1 where the target counts (SFT), None: everywhere;
                                         # reinforcement: the answer's weight, of either sign


class RandomWindows:
    """Endless batches of random windows from a 1-D array of token ids (often a memmap).

    With `loss_mask` (an array of 0/1 aligned with `tokens`), each batch carries the mask of
    its targets: supervised fine-tuning learns only from the assistant's tokens. With `starts`,
    windows begin only there (at conversation starts, so no answer is seen without its question).
    With `anneal` = (batch, token), batches from number `batch` on draw their windows from token
    `token` to the end only: pretraining ends on the text written there (see PretrainConfig.anneal_on_docs).

    Batch number k of a run is drawn with a random generator seeded by (seed, k). So the
    batches do not depend on how many processes share the run: with `world_size` processes,
    process `rank` draws batches rank, rank + world_size, ... And a resumed run continues
    with the right batch by setting one number (`seek`), whatever its number of processes.
    """

    def __init__(self, tokens: np.ndarray, context_length: int, batch_size: int,
                 device: str | torch.device = "cpu", seed: int = 0,
                 loss_mask: np.ndarray | None = None, starts: np.ndarray | None = None,
                 rank: int = 0, world_size: int = 1, anneal: tuple[int, int] | None = None):
        if len(tokens) < context_length + 1:
            raise CourseError(f"The token file has {len(tokens)} tokens, fewer than one window of "
                              f"{context_length + 1}: use more text or a shorter context_length.")
        if anneal and len(tokens) - anneal[1] < context_length + 1:
            raise CourseError(f"The token file has {len(tokens) - anneal[1]} tokens to anneal on, fewer "
                              f"than one window of {context_length + 1}: raise data.docs_copies and run "
                              f"02_pretrain_data again, or turn pretrain.anneal_on_docs off.")
        self.tokens = tokens
        self.loss_mask = loss_mask
        self.starts = None if starts is None else starts[starts <= len(tokens) - context_length - 1]
        self.context_length = context_length
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.anneal = anneal
        self.next_index = rank      # the number, among all processes' batches, of our next one

    def seek(self, batches_drawn: int) -> None:
        """Continue a run in which all processes together have drawn `batches_drawn` batches."""
        self.next_index = batches_drawn + self.rank

    def window_starts(self) -> np.ndarray:
        index = self.next_index
        rng = np.random.default_rng([self.seed, index])
        self.next_index += self.world_size
        if self.starts is not None:
            return rng.choice(self.starts, size=self.batch_size)
        first_token = 0
        if self.anneal:
            first_annealing_batch, annealing_from_token = self.anneal
            if index >= first_annealing_batch:
                first_token = annealing_from_token
        return rng.integers(first_token, len(self.tokens) - self.context_length, size=self.batch_size)

    def next_batch(self) -> Batch:
        """Inputs and targets, each (batch_size, context_length) int64 on the device."""
        starts = self.window_starts()
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
