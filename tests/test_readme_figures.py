"""The README's figures are the images the saved notebooks show: a rerun of the notebooks that
changes a figure fails here until `python -m python_files.readme_figures` takes the new one."""

import pytest

from python_files.errors import CourseError
from python_files.readme_figures import FIGURES, README_MATERIALS, drawn_image


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_readme_figure_is_the_notebooks(name):
    notebook, code_line = FIGURES[name]
    assert (README_MATERIALS / name).read_bytes() == drawn_image(notebook, code_line), \
        f"readme_materials/{name} is not the image of {notebook}: run python -m python_files.readme_figures"


def test_every_figure_the_readme_shows_is_kept_up_to_date():
    readme = (README_MATERIALS.parent / "README.md").read_text(encoding="utf-8")
    shown = {path.name for path in README_MATERIALS.glob("*.png") if f"readme_materials/{path.name}" in readme}
    # the chat page's screenshot comes from the browser test of tests/test_web_chat.py
    assert shown <= set(FIGURES) | {"web_chat.png"}, \
        f"figures in the README without a notebook cell: {sorted(shown - set(FIGURES))}"


def test_a_line_of_code_in_no_cell_is_one_clear_sentence():
    with pytest.raises(CourseError, match="not one: update FIGURES"):
        drawn_image("07_sampling/07_sampling.ipynb", "a line no cell holds")
