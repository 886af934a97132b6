"""Fault injection: runs killed, interrupted or broken at the worst moments lose nothing, and
damaged files are recognised and named in one sentence."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import python_files.train as train_module
from python_files.artifacts import REPO_ROOT, exclusive
from python_files.checkpoint import Checkpoints, DamagedCheckpoint, load_checkpoint, load_resumable, read_log
from python_files.errors import CourseError
from python_files.train import TrainingStopped
from test_train import tiny_run
from tiny_course import tiny_artifacts


def logged_steps(folder: Path) -> list[int]:
    return [record["step"] for record in read_log(folder / "log.jsonl")]


# --- the log: one line per step, whatever happened -------------------------------------------

def test_a_run_killed_before_its_first_checkpoint_starts_a_fresh_log(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path, interrupt_at=3)        # steps 1 and 2 logged, no checkpoint yet
    assert logged_steps(tmp_path) == [1, 2] and not (tmp_path / "last.pt").exists()
    tiny_run(tmp_path)
    assert logged_steps(tmp_path) == list(range(1, 9))


def test_a_kill_between_the_log_line_and_the_checkpoint_loses_no_step(tmp_path, monkeypatch):
    real_save = train_module.save_checkpoint

    def dies_at_step_8(path, state):
        if state["step"] == 8:
            raise KeyboardInterrupt               # the log line of step 8 is written, last.pt is not
        real_save(path, state)

    monkeypatch.setattr(train_module, "save_checkpoint", dies_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path)
    assert logged_steps(tmp_path) == list(range(1, 9)) and load_checkpoint(tmp_path / "last.pt")["step"] == 4
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    tiny_run(tmp_path)
    assert logged_steps(tmp_path) == list(range(1, 9))


def test_a_kill_between_best_and_last_loses_no_step_and_no_best(tmp_path, monkeypatch):
    real_copy = train_module.copy_checkpoint

    def dies_copying_best_to_last(source, path):
        if load_checkpoint(source)["step"] == 8:
            raise KeyboardInterrupt               # best.pt is at step 8, last.pt still at 4
        real_copy(source, path)

    monkeypatch.setattr(train_module, "copy_checkpoint", dies_copying_best_to_last)
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4
    monkeypatch.setattr(train_module, "copy_checkpoint", real_copy)
    _, result = tiny_run(tmp_path)                # repeats steps 5-8 from last.pt
    assert result.step == 8 and logged_steps(tmp_path) == list(range(1, 9))
    evaluations = [r["val_loss"] for r in read_log(tmp_path / "log.jsonl") if "val_loss" in r]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["best_val_loss"] == min(evaluations) and best["step"] == 4 + 4 * (evaluations[1] <= evaluations[0])


def test_after_a_non_finite_loss_a_new_run_logs_each_step_once(tmp_path):
    with pytest.raises(CourseError):
        tiny_run(tmp_path, poison_at=6)           # steps 1-5 logged, last.pt at step 4
    tiny_run(tmp_path)
    assert logged_steps(tmp_path) == list(range(1, 9))


# --- stopping on request ------------------------------------------------------------------------

def test_a_stop_request_saves_the_step_it_reached(tmp_path, monkeypatch):
    class StopAtOnce(train_module.StopRequest):
        requested = True

    monkeypatch.setattr(train_module, "StopRequest", StopAtOnce)
    with pytest.raises(TrainingStopped, match="Training stopped at step 1 of 8, saved in .*last.pt: run it again"):
        tiny_run(tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1 and logged_steps(tmp_path) == [1]


def ci_environment(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_PROFILE": "ci", "LLM_ARTIFACTS": str(root)}


def test_ctrl_c_in_a_terminal_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    artifacts = tiny_artifacts(tmp_path)
    folder = artifacts.checkpoints("pretrain")
    command = [sys.executable, "-m", "python_files.pretrain"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=ci_environment(tmp_path), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not ((folder / "log.jsonl").exists() and len(logged_steps(folder)) >= 3) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "Traceback" not in stderr and "Training stopped at step" in stderr, stderr
    stopped_at = load_checkpoint(folder / "last.pt")["step"]
    assert logged_steps(folder) == list(range(1, stopped_at + 1)), "the log ends where the checkpoint is"
    assert f"Training stopped at step {stopped_at} of 150" in stderr
    subprocess.run(command, cwd=REPO_ROOT, env=ci_environment(tmp_path), check=True, capture_output=True, timeout=300)
    assert logged_steps(folder) == list(range(1, 151))


def test_a_command_shows_a_course_error_as_its_sentence_alone(tmp_path):
    result = subprocess.run([sys.executable, "-m", "python_files.pretrain"], cwd=REPO_ROOT,
                            env=ci_environment(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("$LLM_ARTIFACTS/ci/pretrain/meta.json does not exist yet: run "
                                     "02_pretrain_data first (with the same LLM_PROFILE).")


# --- damaged checkpoints ------------------------------------------------------------------------

@pytest.fixture
def finished_run(tmp_path):
    tiny_run(tmp_path)     # checkpoints at steps 4 and 8
    return Checkpoints(tmp_path)


def test_a_truncated_last_checkpoint_is_named_and_best_is_used(finished_run, capsys):
    data = finished_run.last.read_bytes()
    finished_run.last.write_bytes(data[:len(data) // 2])
    with pytest.raises(DamagedCheckpoint, match=r"last.pt is damaged \(its contents do not match .*resumes from best.pt"):
        load_checkpoint(finished_run.last)
    path, _ = load_resumable(finished_run)
    assert path == finished_run.best and "Resuming from best.pt" in capsys.readouterr().err


def test_after_deleting_a_damaged_last_checkpoint_training_resumes_from_best(finished_run):
    finished_run.last.unlink()
    _, result = tiny_run(finished_run.folder)
    assert result.step == 8 and logged_steps(finished_run.folder) == list(range(1, 9))


def test_a_garbled_byte_inside_a_checkpoint_is_detected(finished_run):
    # torch.load does not check the zip's CRCs: a flipped byte inside a tensor loads silently
    data = bytearray(finished_run.last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    finished_run.last.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpoint, match="do not match the checksum"):
        load_checkpoint(finished_run.last)


@pytest.mark.parametrize("contents, why", [(b"", "the file is empty"), (b"not a zip file at all", "not a readable checkpoint")])
def test_an_empty_or_foreign_file_is_named_without_a_checksum_too(finished_run, contents, why):
    finished_run.last.write_bytes(contents)
    Path(str(finished_run.last) + ".sha256").unlink()      # e.g. a file copied without its checksum
    with pytest.raises(DamagedCheckpoint, match=f"last.pt is damaged \\({why}"):
        load_checkpoint(finished_run.last)


def test_an_intact_checkpoint_this_torch_cannot_read_is_not_called_damaged(finished_run):
    """Bytes that match their checksum are the ones written: unreadable, they come from another
    PyTorch, and deleting them would lose a good run."""
    contents = b"a checkpoint of a future PyTorch"
    finished_run.last.write_bytes(contents)
    Path(str(finished_run.last) + ".sha256").write_text(hashlib.sha256(contents).hexdigest() + "\n")
    with pytest.raises(CourseError, match=r"last.pt is intact .* cannot read it .*another version of PyTorch") as error:
        load_checkpoint(finished_run.last)
    assert not isinstance(error.value, DamagedCheckpoint) and "delete" not in str(error.value)


def test_the_log_forgives_a_half_written_last_line_and_only_that(finished_run):
    lines = finished_run.log.read_text().splitlines()
    finished_run.log.write_text("\n".join(lines) + '\n{"step": 9, "train_lo')   # killed mid-line
    assert [r["step"] for r in read_log(finished_run.log)] == list(range(1, 9))
    lines[3] = lines[3][:10]
    finished_run.log.write_text("\n".join(lines) + "\n")
    with pytest.raises(CourseError, match=r"log.jsonl is damaged at line 4 of 8"):
        read_log(finished_run.log)


def test_when_both_checkpoints_are_damaged_the_sentence_says_so(finished_run):
    finished_run.last.write_bytes(b"")
    finished_run.best.write_bytes(b"")
    with pytest.raises(DamagedCheckpoint, match="last.pt is damaged"):
        load_resumable(finished_run)


def test_a_checkpoint_is_written_with_its_checksum_and_no_temporary_is_left(finished_run):
    assert not list(finished_run.folder.glob(".*.tmp"))
    recorded = (finished_run.folder / "last.pt.sha256").read_text().split()
    assert len(recorded) == 1, "once the new file is in place, only its checksum is listed"


# --- two runs on one folder ---------------------------------------------------------------------

def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    with exclusive(tmp_path, "checkpoints/pretrain"):     # the first run, still going
        with pytest.raises(CourseError, match=r"Another run is writing .*/ \(a notebook kernel or a terminal"):
            tiny_run(tmp_path)
    tiny_run(tmp_path)   # once it is over, the folder is free again


# --- stage 02 killed ----------------------------------------------------------------------------

STAGE_02_FOREVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from python_files.artifacts import Artifacts
    from python_files.document import Document
    from python_files.pretrain_data import prepare_pretraining_data
    from python_files.tokenizer import TextTokenizer

    def endless():
        for i in range(10**9):
            yield Document(str(i), f"text number {i} " * 2000, "test")

    if __name__ == "__main__":
        artifacts = Artifacts(Path(sys.argv[1]), "artifacts/ci")
        tokenizer = TextTokenizer.load(artifacts.tokenizer)
        prepare_pretraining_data(endless(), tokenizer, artifacts, "test", tokenizer.vocab_size, 0.1, workers=2)
""")


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc (Linux)")
def test_stage_02_killed_leaves_no_worker_and_its_temporaries_are_removed_next_time(tmp_path):
    artifacts = tiny_artifacts(tmp_path)
    script = tmp_path / "stage_02.py"
    script.write_text(STAGE_02_FOREVER)
    process = subprocess.Popen([sys.executable, str(script), str(artifacts.root)], cwd=REPO_ROOT,
                               env=ci_environment(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    temporary = artifacts.pretrain_dir / ".train.bin.tmp"
    deadline = time.time() + 120
    while not (temporary.exists() and temporary.stat().st_size > 0) and time.time() < deadline:
        time.sleep(0.1)
    workers = children_of(process.pid)
    assert workers, "the stage started its worker processes"
    process.kill()
    process.wait()
    deadline = time.time() + 30
    while any(map(alive, workers)) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers)), "workers end with the process that started them"
    assert temporary.exists(), "the killed run left its temporary token file"
    old_meta = artifacts.pretrain_meta.read_text()
    tiny_artifacts(tmp_path)                    # the next run of stage 02 (it completes)
    assert not list(artifacts.pretrain_dir.glob(".*.tmp"))
    assert json.loads(artifacts.pretrain_meta.read_text()) == json.loads(old_meta)
