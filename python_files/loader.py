"""Batches for language modelling: random windows of a token file.

A window of `context_length + 1` tokens gives `context_length` training examples at once:
the inputs are its first `context_length` tokens, the targets the same tokens shifted by
one, so position t learns to predict token t + 1 from tokens 0..t.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import CourseError


class RandomWindows:
    """Endless batches of random windows from a 1-D array of token ids (often a memmap)."""

    def __init__(self, tokens: np.ndarray, context_length: int, batch_size: int,
                 device: str | torch.device = "cpu", seed: int = 0):
        if len(tokens) < context_length + 1:
            raise CourseError(f"The token file has {len(tokens)} tokens, fewer than one window of "
                              f"{context_length + 1}: use more text or a shorter context_length.")
        self.tokens = tokens
        self.context_length = context_length
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)

    def window_starts(self) -> np.ndarray:
        return self.rng.integers(0, len(self.tokens) - self.context_length, size=self.batch_size)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, each (batch_size, context_length) int64 on the device."""
        windows = np.stack([self.tokens[start:start + self.context_length + 1]
                            for start in self.window_starts()]).astype(np.int64)
        batch = torch.from_numpy(windows)
        if self.device.type == "cuda":
            # page-locked memory lets the copy run asynchronously while the GPU keeps working
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch[:, :-1], batch[:, 1:]

    def state_dict(self) -> dict:
        """The random state: saved in checkpoints so a resumed run sees the same batches."""
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state
