"""The committed notebooks: saved from one top-to-bottom run, with nothing machine-specific."""

import copy
import json
import re

import nbformat
import pytest

from python_files.course_address import course_address, owner_and_name
from python_files.notebook_setup import COLAB_COURSE
from python_files.run_notebooks import WIDGET_STATE, WIDGET_VIEW, course_notebooks, widgets_as_text

NOTEBOOKS = course_notebooks([])
# absolute paths of a home or temporary folder, on Linux, macOS, Windows or Colab
MACHINE_PATH = re.compile(r"(/home/|/root/|/Users/|/tmp/|/content/|[A-Z]:\\\\Users)")


def code_cells(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


APPENDICES = [nb for nb in NOTEBOOKS if "_appendix_" in nb.stem]
LESSONS = [nb for nb in NOTEBOOKS if not nb.stem.endswith("solutions") and nb not in APPENDICES]


def solutions_of(lesson):
    """06b_reinforcement.ipynb -> 06b_solutions.ipynb, in the same folder."""
    return lesson.with_name(lesson.name.split("_")[0] + "_solutions.ipynb")


def test_the_stage_notebooks_are_found_in_course_order():
    folders = list(dict.fromkeys(nb.parent.name for nb in NOTEBOOKS))
    assert [folder[:2] for folder in folders] == ["01", "02", "03", "04", "05", "06", "07"]
    assert [nb.name for nb in NOTEBOOKS if nb.parent.name == "06_sft" and nb not in APPENDICES] == [
        "06_sft.ipynb", "06_solutions.ipynb", "06b_reinforcement.ipynb", "06b_solutions.ipynb"]
    assert all(NOTEBOOKS.index(nb) < NOTEBOOKS.index(solutions_of(nb)) for nb in LESSONS), \
        "each lesson runs before its solutions"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_come_from_one_top_to_bottom_run(path):
    counts = [cell["execution_count"] for cell in code_cells(path)]
    assert counts == list(range(1, len(counts) + 1))
    assert all(cell["outputs"] for cell in code_cells(path)[1:]), "every cell after setup shows a result"


LONGEST_LESSON_CELL = 20    # lines: one idea per cell; a longer one is split where it shows a result
LONGEST_CLASS_CELL = 30     # a class is one idea, and may take one cell


def cell_limit(source: str) -> int:
    return LONGEST_CLASS_CELL if source.startswith("class ") else LONGEST_LESSON_CELL


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name)
def test_no_code_cell_of_a_lesson_is_longer_than_a_screen(lesson):
    sources = ["".join(cell["source"]) for cell in code_cells(lesson)]
    too_long = [(number, len(source.splitlines())) for number, source in enumerate(sources, start=1)
                if len(source.splitlines()) > cell_limit(source)]
    assert not too_long, (f"code cells (number, lines) over {LONGEST_LESSON_CELL} lines "
                          f"({LONGEST_CLASS_CELL} for a class): {too_long}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_show_no_paths_of_the_machine_they_ran_on(path):
    outputs = json.dumps([cell["outputs"] for cell in code_cells(path)])
    assert not MACHINE_PATH.search(outputs), MACHINE_PATH.search(outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_widgets_show_their_last_state_as_text(path):
    """Where widgets do not run (GitHub), a progress bar shows its last line, not `0%|`."""
    notebook = nbformat.read(path, as_version=4)
    as_text = copy.deepcopy(notebook)
    widgets_as_text(as_text)
    assert as_text == notebook, "run the notebook with python -m python_files.run_notebooks"
    texts = [output["data"]["text/plain"] for cell in notebook.cells for output in cell.get("outputs", [])
             if WIDGET_VIEW in output.get("data", {})]
    assert not any(re.search(r"\b0%\||Box\(children", text) for text in texts), texts


def test_a_finished_progress_bar_is_saved_as_its_last_line():
    state = {"bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
             "a": {"model_name": "HTMLModel", "state": {"value": "training:\u2007100%"}},
             "b": {"model_name": "FloatProgressModel", "state": {"value": 800.0, "max": 800.0}},
             "c": {"model_name": "HTMLModel", "state": {"value": "\u2007800/800\u2007[18:07&lt;00:00]"}},
             "box": {"model_name": "VBoxModel", "state": {"children": []}}}
    notebook = nbformat.v4.new_notebook(metadata={"widgets": {WIDGET_STATE: {"state": state}}})
    notebook.cells = [nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
        "display_data", data={WIDGET_VIEW: {"model_id": model}, "text/plain": "training:   0%|  | 0/800"})])
        for model in ("bar", "box")]
    widgets_as_text(notebook)
    shown = [cell.outputs[0]["data"]["text/plain"] for cell in notebook.cells]
    assert shown == ["training: 100%|##########| 800/800 [18:07<00:00]",
                     "(an interactive widget: run the notebook to use it)"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_sets_up_colab_and_ends_with_checks(path):
    cells = code_cells(path)
    text = path.read_text(encoding="utf-8")
    setup = "".join(cells[0]["source"])
    assert f"git clone -q --depth=1 {course_address()} {COLAB_COURSE}" in setup, "the address of pyproject.toml"
    assert setup.rstrip().endswith(f'set_up("{path.parent.name}")'), "on Colab, set_up moves into this folder"
    badge = f"/github/{owner_and_name(course_address())}/blob/main/{path.parent.name}/{path.name}"
    assert badge in text, "the Colab badge opens this notebook, at the course's address"
    assert "".join(cells[-1]["source"]).count("assert ") >= 3


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name)
def test_each_lesson_ends_with_exercises_whose_solutions_the_tests_run(lesson):
    solutions = solutions_of(lesson)
    assert solutions in NOTEBOOKS, "a lesson and its solutions, both collected by pytest"
    cells = json.loads(lesson.read_text(encoding="utf-8"))["cells"]
    exercises = "".join(cells[-1]["source"])
    assert cells[-1]["cell_type"] == "markdown" and exercises.startswith("## Exercises")
    assert 3 <= len(re.findall(r"^\d\. ", exercises, re.MULTILINE)) <= 5
    assert solutions.name in exercises, "the exercises link their solutions"


@pytest.mark.parametrize("appendix", APPENDICES, ids=lambda p: p.name)
def test_each_appendix_is_linked_from_its_lesson_and_back(appendix):
    lesson = next(nb for nb in LESSONS if nb.parent == appendix.parent and nb.name[:2] == appendix.name[:2])
    assert f"]({appendix.name})" in lesson.read_text(encoding="utf-8"), "the lesson links its appendix"
    assert f"]({lesson.name})" in appendix.read_text(encoding="utf-8"), "the appendix links its lesson"
