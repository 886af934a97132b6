"""One seed for a whole run: every random draw of the course comes from the profile's `seed`.

A run draws at several places: the initial weights, the order of the pretraining and
fine-tuning windows, the answers reinforcement samples, the split of the questions, the
made-up names. Each gets a seed of its own, derived from the profile's one `seed` and the name
of what it draws, so that

- one seed gives the same run on every re-run (and after a resume: batches are numbered and
  drawn from (seed, number), see loader.py);
- two seeds give two different runs, in every draw at once;
- no two draws share a stream: changing how many batches one part draws never shifts another.

Nothing here, or anywhere in the package, reseeds the process's own generator
(`torch.manual_seed`): each draw has a generator object of its own. The one exception is
dropout, which takes no generator object: the training loop runs it on a copy of the process's
generator (`torch.random.fork_rng`), seeded from the run's seed and put back when it returns.
"""

from __future__ import annotations

import hashlib

import torch


def seed_for(seed: int, purpose: str) -> int:
    """A seed for one kind of draw ("initial weights", say) of the run seeded by `seed`."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1     # 63 bits: torch's seeds are signed 64-bit


def generator_for(seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator of its own for one kind of draw of the run seeded by `seed`."""
    return torch.Generator(device=device).manual_seed(seed_for(seed, purpose))
