"""The batch loader: windows of the token file, targets shifted by one, reproducible."""

import numpy as np
import pytest

from python_files.errors import CourseError
from python_files.loader import RandomWindows, ValidationWindows


@pytest.fixture
def token_file(tmp_path):
    tokens = np.memmap(tmp_path / "train.bin", dtype=np.uint16, mode="w+", shape=(5000,))
    tokens[:] = (np.arange(5000) * 7919) % 4093   # distinct-looking ids at every position
    tokens.flush()
    return np.memmap(tmp_path / "train.bin", dtype=np.uint16, mode="r")


def test_windows_are_slices_of_the_token_file(token_file):
    loader = RandomWindows(token_file, context_length=32, batch_size=8, seed=1)
    starts = RandomWindows(token_file, 32, 8, seed=1).window_starts(0)
    inputs, targets, loss_mask = loader.next_batch()
    assert loss_mask is None
    assert inputs.shape == targets.shape == (8, 32)
    for row, start in enumerate(starts):
        assert inputs[row].tolist() == token_file[start:start + 32].tolist()
        assert targets[row].tolist() == token_file[start + 1:start + 33].tolist()


def test_windows_reach_the_end_of_the_file(token_file):
    loader = RandomWindows(token_file, context_length=32, batch_size=100_000, seed=0)   # the last of 4,968 starts is missed with odds of e^-20
    assert loader.window_starts(0).max() == len(token_file) - 33


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
        RandomWindows(token_file[:10], context_length=16, batch_size=2, seed=0)


def test_annealing_batches_read_only_the_end_of_the_file_from_their_batch_on(token_file):
    """anneal=(3, 4000): batches 0-2 read the whole file, batches 3 on only its last 1,000 tokens,
    whatever the number of processes and after a resume."""
    loader = RandomWindows(token_file, 16, 20_000, seed=3, anneal=(3, 4000))
    starts = [loader.window_starts(index) for index in range(5)]
    assert all(s.min() < 4000 for s in starts[:3]) and all(s.min() >= 4000 for s in starts[3:])
    assert starts[4].max() == len(token_file) - 17, "still up to the last window"
    second_process = RandomWindows(token_file, 16, 20_000, seed=3, rank=1, world_size=2, anneal=(3, 4000))
    second_process.seek(2)
    assert second_process.next_batch().inputs.min() >= 0 and second_process.next_index == 5, "read batch 3"
    assert np.array_equal(second_process.window_starts(3), starts[3])


def test_annealing_on_less_than_one_window_is_refused(token_file):
    with pytest.raises(CourseError, match="to anneal on, fewer than one window"):
        RandomWindows(token_file, context_length=16, batch_size=2, seed=0, anneal=(0, 4990))


def test_two_seeds_draw_different_windows_and_one_seed_the_same(token_file):
    first, again, other = (RandomWindows(token_file, 16, 8, seed=seed) for seed in (7, 7, 8))
    assert first.next_batch().inputs.equal(again.next_batch().inputs)
    assert not first.next_batch().inputs.equal(other.next_batch().inputs)


def test_validation_windows_are_spread_evenly_and_the_same_at_every_evaluation(token_file):
    windows = ValidationWindows(token_file, 16, 4, batches=3, device="cpu")
    starts = np.concatenate([windows.window_starts(index) for index in range(3)])
    assert starts[0] == 0 and starts[-1] == len(token_file) - 17, "from the first window to the last"
    gaps = np.diff(starts)
    assert gaps.max() - gaps.min() <= 1, "evenly spaced"
    first = [windows.next_batch().inputs for _ in range(3)]
    again = ValidationWindows(token_file, 16, 4, batches=3, device="cpu")
    assert all(a.equal(b) for a, b in zip(first, (again.next_batch().inputs for _ in range(3))))


def test_validation_windows_of_conversations_start_at_conversation_starts(token_file):
    conversation_starts = np.array([0, 100, 250, 900, 3000, 4900])
    windows = ValidationWindows(token_file, 16, 2, batches=2, starts=conversation_starts)
    starts = np.concatenate([windows.window_starts(index) for index in range(2)])
    assert set(starts) <= set(conversation_starts[conversation_starts <= len(token_file) - 17])
    assert starts[0] == 0 and starts[-1] == 4900
