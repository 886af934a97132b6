"""Where the course lives: its repository address, kept once, in pyproject.toml.

A notebook's Colab badge and setup cell name it before the course is on the machine, and the
README tells how to clone it, so they hold copies of it. Moving the course is one command:

    python -m python_files.course_address https://github.com/someone/their-fork

which rewrites pyproject.toml and every copy; the tests check that the copies agree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .artifacts import REPO_ROOT, atomic_write_text
from .errors import CourseError, sentence_on_error

GITHUB_URL = re.compile(r"^https://github\.com/([\w.-]+/[\w.-]+)$")


def course_address() -> str:
    """The repository address in pyproject.toml."""
    # a regular expression, not tomllib: that needs Python 3.11, the course runs from 3.10
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^Repository = "([^"]+)"', text, re.MULTILINE).group(1)


def files_with_copies() -> list[Path]:
    """The files that name the address: pyproject.toml, the README and every notebook."""
    return [REPO_ROOT / "pyproject.toml", REPO_ROOT / "README.md",
            *sorted(REPO_ROOT.glob("[0-9][0-9]_*/*.ipynb"))]


def owner_and_name(url: str) -> str:
    match = GITHUB_URL.match(url)
    if match is None:
        raise CourseError(f"{url!r} is not a GitHub repository address such as "
                          f"https://github.com/owner/name (Colab opens notebooks from GitHub).")
    return match.group(1)


def move_course(new_url: str) -> int:
    """Rewrite every copy of the address (a clone URL, or owner/name in a Colab badge) to
    `new_url`; returns how many files changed."""
    old, new = owner_and_name(course_address()), owner_and_name(new_url)
    changed = 0
    for path in files_with_copies():
        text = path.read_text(encoding="utf-8")
        moved = text.replace(f"github.com/{old}", f"github.com/{new}").replace(f"/github/{old}/", f"/github/{new}/")
        if moved != text:
            atomic_write_text(path, moved)
            changed += 1
    return changed


@sentence_on_error
def main() -> None:
    if len(sys.argv) != 2:
        raise CourseError("Give the new address: python -m python_files.course_address https://github.com/owner/name")
    print(f"{move_course(sys.argv[1])} files now name {sys.argv[1]}")


if __name__ == "__main__":
    main()
