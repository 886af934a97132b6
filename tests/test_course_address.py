"""The course's address: kept once in pyproject.toml, its copies rewritten by one command."""

import shutil

import pytest

import python_files.course_address as address
from python_files.artifacts import REPO_ROOT
from python_files.errors import CourseError


def test_the_readme_tells_how_to_clone_the_course_from_its_address():
    assert f"git clone {address.course_address()}" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_moving_the_course_rewrites_every_copy_and_nothing_else(tmp_path, monkeypatch):
    for name in ("pyproject.toml", "README.md", "06_sft/06b_reinforcement.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    monkeypatch.setattr(address, "REPO_ROOT", tmp_path)
    old = address.course_address()
    notebook = (tmp_path / "06_sft/06b_reinforcement.ipynb").read_text()
    assert address.move_course("https://github.com/someone/fork") == 3
    assert address.course_address() == "https://github.com/someone/fork"
    moved = (tmp_path / "06_sft/06b_reinforcement.ipynb").read_text()
    assert old not in moved and address.owner_and_name(old) not in moved
    assert "git clone -q --depth=1 https://github.com/someone/fork /content/" in moved
    assert "colab.research.google.com/github/someone/fork/blob/main/06_sft/" in moved
    assert len(moved.splitlines()) == len(notebook.splitlines()), "only the address changed"


def test_an_address_colab_cannot_open_is_refused():
    with pytest.raises(CourseError, match="is not a GitHub repository address"):
        address.owner_and_name("https://gitlab.com/someone/fork")
