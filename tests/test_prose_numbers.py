"""Every number written in a notebook's prose is true of the committed run, or says where it is from.

A number in a markdown cell must appear in that notebook's code or saved outputs (so a re-run
that changes a result fails here until the prose follows), or the cell must say where it is
quoted from, in a comment a reader does not see::

    <!-- quoted from: README.md -->                     each such number must be in README.md
    <!-- quoted from: Allen-Zhu and Li, arXiv 2309.14316 -->   a paper: named, not checked

Numbers checked: with a thousands separator (1,920), with a decimal point (1.58), percentages
(38%) and integers of three digits or more (800); not inside `code`, link targets, years or
arXiv numbers. Small integers ("4 layers") are too common to check this way.
"""

import json
import re
from pathlib import Path

import pytest

from python_files.artifacts import REPO_ROOT
from python_files.run_notebooks import course_notebooks

NUMBER = re.compile(r"(?<![\w.-])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+%|\d{3,})(?![\w])")
NOT_PROSE = re.compile(r"`[^`]*`|\]\([^)]*\)|<!--.*?-->|\b\d{4}\.\d{4,5}\b|\b(?:19|20)\d\d\b", re.DOTALL)
QUOTED = re.compile(r"<!--\s*quoted from:\s*(.+?)\s*-->")


def plain(text: str) -> str:
    """Text as numbers are compared in it: no thousands separators, the minus sign as a hyphen."""
    return text.replace(",", "").replace("\u2212", "-")


def shown_by(cells: list[dict]) -> str:
    """The code and the saved text outputs of a notebook's cells."""
    parts = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        parts.append("".join(cell["source"]))
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", [])))
            parts += ["".join(value) for kind, value in output.get("data", {}).items() if kind.startswith("text/")]
    return plain("\n".join(parts))


def appears_in(number: str, text: str) -> bool:
    """`number` is in `text` as a number of its own, not inside a longer one (762 is not in 1,762 or
    0.762), or (a decimal) as the start of a longer one: 1.58 in 1.5801."""
    alone = rf"(?<![\d.,]){re.escape(number)}(?!\d|,\d\d\d)"
    longer = rf"(?<![\d.,]){re.escape(number)}\d"
    return re.search(alone, text) is not None or ("." in number and re.search(longer, text) is not None)


def unsupported_numbers(cells: list[dict], root: Path = REPO_ROOT) -> list[str]:
    """The numbers of the markdown cells that neither the notebook shows nor a source vouches for."""
    shown = shown_by(cells)
    missing = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        sources = QUOTED.findall(source)
        files = [plain((root / name).read_text(encoding="utf-8")) for name in sources if (root / name).is_file()]
        named_elsewhere = any(not (root / name).is_file() for name in sources)
        for match in NUMBER.finditer(NOT_PROSE.sub(" ", source)):
            number = plain(match.group(1))
            if appears_in(number, shown) or named_elsewhere or any(appears_in(number, text) for text in files):
                continue
            missing.append(match.group(1))
    return missing


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "source": [text]}


def code(source: str, printed: str) -> dict:
    return {"cell_type": "code", "source": [source], "outputs": [{"output_type": "stream", "text": [printed]}]}


def test_a_number_is_found_only_as_a_number_of_its_own():
    assert appears_in("762", "762 tokens/s") and appears_in("1.58", "1.5801 bits") and appears_in("163", "163.0M")
    assert not appears_in("762", "1,762 tokens") and not appears_in("762", "0.762") and not appears_in("762", "27620")
    assert not appears_in("20,000", "120,000") and not appears_in("200", "2000000")


def test_the_check_finds_a_number_no_output_shows_and_accepts_a_quoted_one(tmp_path):
    (tmp_path / "BENCHMARK.md").write_text("| row | 2.032 |\n")
    run = code("print(loss)", "validation loss 1.5801, 1,920 questions\n")
    assert unsupported_numbers([run, markdown("The loss reached 1.58 on 1,920 questions.")], tmp_path) == []
    assert unsupported_numbers([run, markdown("The loss reached 1.49 after 800 steps.")], tmp_path) == ["1.49", "800"]
    assert unsupported_numbers([run, markdown("GPT-2 scored 2.032.\n<!-- quoted from: BENCHMARK.md -->")],
                               tmp_path) == []
    assert unsupported_numbers([run, markdown("GPT-2 scored 2.050.\n<!-- quoted from: BENCHMARK.md -->")],
                               tmp_path) == ["2.050"], "a file named as the source must hold the number"
    assert unsupported_numbers([run, markdown("Storage needs 100 readings.\n<!-- quoted from: arXiv 2404.05405 -->")],
                               tmp_path) == []
    assert unsupported_numbers([run, markdown("In `x = 12345`, see arXiv 2309.14316 (2023).")], tmp_path) == []


@pytest.mark.parametrize("path", course_notebooks([]), ids=lambda p: p.name)
def test_every_number_in_a_notebooks_prose_is_shown_by_it_or_quoted(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    missing = unsupported_numbers(cells)
    assert not missing, (f"{path.name}: {', '.join(missing)} appear in no code or output of the notebook: make "
                         f"the prose follow the run, print the number, or mark the cell <!-- quoted from: SOURCE -->")
