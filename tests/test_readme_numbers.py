"""The README's numbers about the committed run are the committed run's.

The sections that describe what the committed `cpu` run produced ("What you end with" and "What
the stages show") may only hold numbers that a saved notebook shows, or that a file named in
the paragraph holds (<!-- quoted from: readme_materials/readings.json -->, say): a re-run of
the notebooks that changes a result fails here until the README follows. The rules are those
of the notebooks' prose (test_prose_numbers.py), with a paragraph for a cell.
"""

import json
import re

from python_files.artifacts import REPO_ROOT
from python_files.run_notebooks import course_notebooks
from test_prose_numbers import QUOTED, shown_by, unsupported_numbers

# up to the readings benchmark's section, whose table test_benchmarks.py checks against its committed rows
SECTIONS = (("## What you end with", "## Quick start"), ("## What the stages show", "### How many readings does a fact need?"))


def run_sections(readme: str, root=REPO_ROOT) -> list[str]:
    """The paragraphs (and tables) of the README's sections about the committed run. A file named
    as a source anywhere in a subsection (up to the next heading) is the source of each of its
    paragraphs, so that a table and the sentences around it can name their benchmark once; a
    paper is named in the paragraph that quotes it."""
    paragraphs = []
    for start, end in SECTIONS:
        section = readme[readme.index(start):readme.index(end)]
        for subsection in re.split(r"\n(?=#)", section):
            files = [name for name in QUOTED.findall(subsection) if (root / name).is_file()]
            markers = "".join(f"\n<!-- quoted from: {name} -->" for name in files)
            paragraphs += [paragraph + markers for paragraph in subsection.split("\n\n") if paragraph.strip()]
    return paragraphs


def test_every_number_about_the_committed_run_is_in_a_saved_notebook_or_a_named_file():
    outputs = [{"cell_type": "code", "source": [shown_by(json.loads(path.read_text(encoding="utf-8"))["cells"])],
                "outputs": []} for path in course_notebooks([])]
    paragraphs = run_sections((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    missing = {paragraph.splitlines()[0][:60]: numbers for paragraph in paragraphs
               if (numbers := unsupported_numbers(outputs + [{"cell_type": "markdown", "source": [paragraph]}]))}
    assert not missing, ("README numbers that no saved notebook shows (re-run them, or make the README follow "
                         f"the run, or name the file they are from): {missing}")


def test_a_file_named_in_a_subsection_vouches_for_its_tables_but_a_paper_only_for_its_paragraph(tmp_path):
    (tmp_path / "rows.json").write_text('{"recall": "98%"}')
    readme = ("## What you end with\n\nIt says 12.5 things.\n\n## Quick start\n\n## What the stages show\n\n"
              "### Readings\n\n| row | 98% |\n\nSee the rows.\n<!-- quoted from: rows.json -->\n\n"
              "### Papers\n\nA paper found 3.3 bits.\n<!-- quoted from: a paper -->\n\nAnd 4.4 more.\n\n"
              "### How many readings does a fact need?\n")
    paragraphs = run_sections(readme, tmp_path)
    table = next(p for p in paragraphs if p.startswith("| row"))
    assert "rows.json" in table and unsupported_numbers([{"cell_type": "markdown", "source": [table]}], tmp_path) == []
    unquoted = [p for p in paragraphs if p.startswith("And 4.4")]
    assert unsupported_numbers([{"cell_type": "markdown", "source": unquoted}], tmp_path) == ["4.4"]
    first = [p for p in paragraphs if p.startswith("It says")]
    assert unsupported_numbers([{"cell_type": "markdown", "source": first}], tmp_path) == ["12.5"]
