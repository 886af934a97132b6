"""The committed notebooks: saved from one top-to-bottom run, with nothing machine-specific."""

import json
import re

import pytest

from python_files.run_notebooks import course_notebooks

NOTEBOOKS = course_notebooks([])
# absolute paths of a home or temporary folder, on Linux, macOS, Windows or Colab
MACHINE_PATH = re.compile(r"(/home/|/root/|/Users/|/tmp/|/content/|[A-Z]:\\\\Users)")


def code_cells(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_the_stage_notebooks_are_found():
    assert [nb.parent.name for nb in NOTEBOOKS][:3] == ["01_tokenizer", "02_pretrain_data",
                                                         "03_model_pipeline"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_come_from_one_top_to_bottom_run(path):
    counts = [cell["execution_count"] for cell in code_cells(path)]
    assert counts == list(range(1, len(counts) + 1))
    assert all(cell["outputs"] for cell in code_cells(path)[1:]), "every cell after setup shows a result"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_show_no_paths_of_the_machine_they_ran_on(path):
    outputs = json.dumps([cell["outputs"] for cell in code_cells(path)])
    assert not MACHINE_PATH.search(outputs), MACHINE_PATH.search(outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_sets_up_colab_and_ends_with_checks(path):
    cells = code_cells(path)
    text = path.read_text(encoding="utf-8")
    assert "google.colab" in "".join(cells[0]["source"])
    assert f"blob/main/{path.parent.name}/{path.name}" in text, "the Colab badge opens this notebook"
    assert "".join(cells[-1]["source"]).count("assert ") >= 3
