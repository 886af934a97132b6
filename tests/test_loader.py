"""The batch loader: windows of the token file, targets shifted by one, reproducible."""

import numpy as np
import pytest

from python_files.errors import CourseError
from python_files.loader import RandomWindows


@pytest.fixture
def token_file(tmp_path):
    tokens = np.memmap(tmp_path / "train.bin", dtype=np.uint16, mode="w+", shape=(5000,))
    tokens[:] = (np.arange(5000) * 7919) % 4093   # distinct-looking ids at every position
    tokens.flush()
    return np.memmap(tmp_path / "train.bin", dtype=np.uint16, mode="r")


def test_windows_are_slices_of_the_token_file(token_file):
    loader = RandomWindows(token_file, context_length=32, batch_size=8, seed=1)
    starts = RandomWindows(token_file, 32, 8, seed=1).window_starts()
    inputs, targets, loss_mask = loader.next_batch()
    assert loss_mask is None
    assert inputs.shape == targets.shape == (8, 32)
    for row, start in enumerate(starts):
        assert inputs[row].tolist() == token_file[start:start + 32].tolist()
        assert targets[row].tolist() == token_file[start + 1:start + 33].tolist()


def test_windows_reach_the_end_of_the_file(token_file):
    loader = RandomWindows(token_file, context_length=32, batch_size=100_000, seed=0)   # the last of 4,968 starts is missed with odds of e^-20
    assert loader.window_starts().max() == len(token_file) - 33


def test_seeking_replays_the_same_batches(token_file):
    loader = RandomWindows(token_file, 16, 4, seed=5)
    batches = [loader.next_batch().inputs for _ in range(3)]
    resumed = RandomWindows(token_file, 16, 4, seed=5)
    resumed.seek(2)
    assert resumed.next_batch().inputs.equal(batches[2])
    assert not batches[0].equal(batches[1])


def test_processes_share_out_the_batches_of_one_process(token_file):
    alone = RandomWindows(token_file, 16, 4, seed=5)
    batches = [alone.next_batch().inputs for _ in range(4)]
    ranks = [RandomWindows(token_file, 16, 4, seed=5, rank=r, world_size=2) for r in (0, 1)]
    assert [ranks[i % 2].next_batch().inputs.equal(batches[i]) for i in range(4)] == [True] * 4


def test_the_loss_mask_travels_with_its_targets(token_file):
    mask = (np.asarray(token_file) % 2).astype(np.uint8)   # 1 where the token id is odd
    batch = RandomWindows(token_file, 16, 8, seed=2, loss_mask=mask).next_batch()
    assert batch.loss_mask.equal(batch.targets % 2)


def test_a_file_shorter_than_one_window_is_refused(token_file):
    with pytest.raises(CourseError, match="fewer than one window"):
        RandomWindows(token_file[:10], context_length=16, batch_size=2)


def test_annealing_batches_read_only_the_end_of_the_file_from_their_batch_on(token_file):
    """anneal=(3, 4000): batches 0-2 read the whole file, batches 3 on only its last 1,000 tokens,
    whatever the number of processes and after a resume."""
    loader = RandomWindows(token_file, 16, 20_000, seed=3, anneal=(3, 4000))
    starts = [loader.window_starts() for _ in range(5)]
    assert all(s.min() < 4000 for s in starts[:3]) and all(s.min() >= 4000 for s in starts[3:])
    assert starts[4].max() == len(token_file) - 17, "still up to the last window"
    second_process = RandomWindows(token_file, 16, 20_000, seed=3, rank=1, world_size=2, anneal=(3, 4000))
    second_process.seek(2)
    assert second_process.window_starts().min() >= 4000, "batch 3 of the run"


def test_annealing_on_less_than_one_window_is_refused(token_file):
    with pytest.raises(CourseError, match="to anneal on, fewer than one window"):
        RandomWindows(token_file, context_length=16, batch_size=2, anneal=(0, 4990))
