"""A few training steps of a tiny model, for the multi-process test (run by torchrun or alone).

    python tests/ddp_worker.py [--masked] OUT_DIR GRAD_ACCUM_STEPS [STOP_AFTER [ctrl-c]]
    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py [--masked] OUT_DIR GRAD_ACCUM_STEPS [STOP_AFTER [ctrl-c]]

The run is planned for 6 steps; STOP_AFTER ends it early, as an interruption would, after a
checkpoint (one every 3 steps). Run again in the same OUT_DIR, it resumes. With "ctrl-c", the
last process alone gets a SIGINT during step STOP_AFTER + 1 instead: all of them must stop
after that step, with a checkpoint. With --masked, the loss counts only the targets of a
random mask, as fine-tuning's does, denser in some windows than in others.
"""

import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch

from python_files.distributed import start_distributed, stop_distributed, wait_for_all
from python_files.loader import RandomWindows
from python_files.model import GPT, GPTConfig
from python_files.checkpoint import Checkpoints
from python_files.train import TrainConfig, TrainingStopped, train

TOKENS = (np.arange(4000) * 7 % 64).astype(np.uint16)
# kept targets: about 1 in 10 in the first half of the tokens, 9 in 10 in the second
LOSS_MASK = (np.random.default_rng(0).random(4000) < np.where(np.arange(4000) < 2000, 0.1, 0.9)).astype(np.uint8)


class Interrupted(Exception):
    pass


def main(out_dir: str, grad_accum_steps: int, stop_after: int | None = None, how: str = "raise",
         masked: bool = False) -> None:
    setup = start_distributed()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, n_embd=16))
    shards = {"rank": setup.rank, "world_size": setup.world_size}
    config = TrainConfig(max_steps=6, learning_rate=1e-2, warmup_steps=2, eval_interval=3,
                         eval_batches=2, grad_accum_steps=grad_accum_steps)
    mask = {"loss_mask": LOSS_MASK} if masked else {}
    batches = RandomWindows(TOKENS, 16, 4, seed=0, **mask, **shards)
    if stop_after is not None:
        batches_per_process = stop_after * grad_accum_steps // setup.world_size
        last_process = setup.rank == setup.world_size - 1
        if how == "raise":
            batches.next_batch = stop_after_batches(batches.next_batch, batches_per_process, raise_interrupted)
        elif last_process:
            batches.next_batch = stop_after_batches(batches.next_batch, batches_per_process, press_ctrl_c)
    try:
        train(model, batches, lambda: RandomWindows(TOKENS, 16, 4, seed=9, **mask, **shards), config,
              Checkpoints(Path(out_dir)), progress=False, distributed=setup, seed=0, stage="pretrain")
    except Interrupted:          # every process stops at the same batch, as TrainingStopped does
        wait_for_all(setup)
    except TrainingStopped as stopped:
        print(f"rank {setup.rank}: {stopped}")
    stop_distributed(setup)


def raise_interrupted():
    raise Interrupted


def press_ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def stop_after_batches(next_batch, count: int, interrupt):
    drawn = 0

    def limited():
        nonlocal drawn
        drawn += 1
        if drawn == count + 1:
            interrupt()
        return next_batch()
    return limited


if __name__ == "__main__":
    masked = "--masked" in sys.argv
    args = [arg for arg in sys.argv[1:] if arg != "--masked"]
    main(args[0], int(args[1]), int(args[2]) if len(args) > 2 else None, *args[3:], masked=masked)
