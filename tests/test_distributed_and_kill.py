"""Scaling out and surviving a kill: two processes with DDP (gloo, on CPU) against one, and a
training process killed with SIGKILL that resumes from its last checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from python_files.artifacts import REPO_ROOT
from python_files.checkpoint import load_checkpoint, read_log
from tiny_course import tiny_artifacts

WORKER = Path(__file__).parent / "ddp_worker.py"


def run(command):
    """Run `command` from the course folder; on failure, show what its processes printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"{' '.join(command)} exited {result.returncode}\n"
                                    f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    return result


@pytest.mark.parametrize("masked", [False, True], ids=["every target", "a loss mask"])
def test_two_processes_take_the_same_steps_as_one_with_the_same_global_batch(tmp_path, masked):
    # one process accumulating 2 micro-batches per step, and 2 processes with 1 each: batch
    # numbering makes them read the same windows, so only the order of float additions differs.
    # With a loss mask (fine-tuning's), the micro-batches keep different numbers of targets:
    # the step is the same only when each target weighs the same in it
    flag = ["--masked"] if masked else []
    run([sys.executable, str(WORKER), *flag, str(tmp_path / "one"), "2"])
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(WORKER), *flag, str(tmp_path / "two"), "2"])
    one, two = (load_checkpoint(tmp_path / name / "last.pt")["model"] for name in ("one", "two"))
    keys = slice(16, 32)   # the key part of qkv.bias (n_embd = 16: queries, keys, values)
    for weights in (one, two):
        # the key bias has zero gradient in exact arithmetic (softmax ignores a shift shared by
        # all keys); its float noise depends on summation order and Adam scales noise up to
        # lr-sized steps, so it is compared on its own, loosely
        weights["key_bias"] = weights["blocks.0.attn.qkv.bias"][keys].clone()
        weights["blocks.0.attn.qkv.bias"][keys] = 0
    for name in one:
        # float sums in another order differ by ~1e-7; after six steps the weights still agree
        # to 1e-6, while one step of lr 1e-2 moves them by ~1e-2
        tolerance = 1e-4 if name == "key_bias" else 1e-6
        assert torch.allclose(one[name], two[name], atol=tolerance), name
    logs = [read_log(tmp_path / n / "log.jsonl") for n in ("one", "two")]
    for key in ("train_loss", "val_loss"):   # the validation loss too: best.pt does not depend on it
        values = [[line[key] for line in log if key in line] for log in logs]
        assert len(values[0]) == (6 if key == "train_loss" else 2)
        assert values[0] == pytest.approx(values[1], abs=1e-5), key


def test_a_run_of_two_processes_resumes_in_one(tmp_path):
    # 3 steps on 2 processes (checkpoint at step 3), then the rest in a single process
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(WORKER), str(tmp_path / "switched"), "2", "3"])
    assert load_checkpoint(tmp_path / "switched" / "last.pt")["step"] == 3
    run([sys.executable, str(WORKER), str(tmp_path / "switched"), "2"])
    run([sys.executable, str(WORKER), str(tmp_path / "straight"), "2"])
    switched, straight = (load_checkpoint(tmp_path / name / "last.pt") for name in ("switched", "straight"))
    assert switched["step"] == straight["step"] == 6
    # the same batches in the same steps: the losses agree as in the test above
    losses = [[r["train_loss"] for r in read_log(tmp_path / n / "log.jsonl")] for n in ("switched", "straight")]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_ctrl_c_in_one_process_stops_all_after_the_same_step_with_a_checkpoint(tmp_path):
    # only the last process gets the signal, during step 2; the processes agree to stop after it
    result = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                  str(WORKER), str(tmp_path / "stopped"), "2", "1", "ctrl-c"])
    assert "rank 0: Training stopped at step 2 of 6" in result.stdout
    assert "rank 1: Training stopped at step 2 of 6" in result.stdout
    assert load_checkpoint(tmp_path / "stopped" / "last.pt")["step"] == 2
    assert [r["step"] for r in read_log(tmp_path / "stopped" / "log.jsonl")] == [1, 2]


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    artifacts = tiny_artifacts(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_PROFILE": "ci",
           "LLM_ARTIFACTS": str(tmp_path)}
    command = [sys.executable, "-m", "python_files.pretrain"]
    folder = artifacts.checkpoints("pretrain")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (folder / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)          # somewhere after the first checkpoint, maybe while writing another
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(folder / "last.pt")["step"]   # loads: the file is whole
    assert 0 < killed_at < 150
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=300)
    final = load_checkpoint(folder / "last.pt")
    assert final["step"] == 150
    assert [r["step"] for r in read_log(folder / "log.jsonl")] == list(range(1, 151))
    assert not list(folder.glob(".*.tmp")), "no temporary file is left behind"
    evaluations = [r["val_loss"] for r in read_log(folder / "log.jsonl") if "val_loss" in r]
    assert load_checkpoint(folder / "best.pt")["best_val_loss"] == min(evaluations)
