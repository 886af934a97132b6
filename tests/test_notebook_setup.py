"""The first cell's Colab branch: what set_up does on a fresh Colab runtime, and nothing elsewhere."""

import os
import sys
import types

import pytest

import python_files.notebook_setup as notebook_setup


@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    """A Colab runtime in miniature: google.colab importable, the course cloned under tmp_path,
    pip and Drive recorded instead of run."""
    calls = []
    drive = types.SimpleNamespace(mount=lambda where: calls.append(("mount", where)))
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(notebook_setup, "COLAB_COURSE", tmp_path / "course")
    monkeypatch.setattr(notebook_setup, "INSTALLED_MARK", tmp_path / "installed")
    monkeypatch.setattr(notebook_setup.subprocess, "run", lambda command, check: calls.append(("run", command)))
    (tmp_path / "course" / "04_pretraining").mkdir(parents=True)
    for name in ("LLM_ARTIFACTS", "LLM_LOCAL_COPIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


def test_on_colab_it_installs_once_keeps_artifacts_on_drive_and_moves_into_the_folder(fake_colab, tmp_path):
    notebook_setup.set_up("04_pretraining")
    notebook_setup.set_up("04_pretraining")     # the runtime's second notebook
    installs = [command for kind, command in fake_colab if kind == "run"]
    assert len(installs) == 1 and installs[0][-1] == str(tmp_path / "course" / "requirements-colab.txt")
    assert ("mount", "/content/drive") in fake_colab
    assert os.environ["LLM_ARTIFACTS"].startswith("/content/drive/")
    assert os.environ["LLM_LOCAL_COPIES"] == notebook_setup.COLAB_LOCAL_COPIES
    assert os.getcwd() == str(tmp_path / "course" / "04_pretraining")


def test_elsewhere_it_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("LLM_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)
    notebook_setup.set_up("04_pretraining")
    assert os.getcwd() == str(tmp_path) and "LLM_ARTIFACTS" not in os.environ
