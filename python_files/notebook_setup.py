"""What each notebook's first cell calls: on Colab, what a fresh runtime lacks; elsewhere nothing.

A Colab kernel starts with no course on its disk. The cell clones it (the one step that cannot
live here), then `set_up` installs only what Colab lacks, keeps the artifacts on Google Drive so
that a disconnect loses nothing, and moves into the notebook's folder. This module imports only
the standard library: it runs before the course's requirements are installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COLAB_COURSE = Path("/content/llm-from-scratch")     # where the first cell clones the course
COLAB_ARTIFACTS = "/content/drive/MyDrive/llm-from-scratch/artifacts"
# token files are read from a copy on the runtime's own disk: random reads over Drive are slow
COLAB_LOCAL_COPIES = "/content/local_copies"
# written after the install, so that the second notebook of a runtime does not install again
INSTALLED_MARK = Path("/content/.llm-from-scratch-installed")


def on_colab() -> bool:
    return "google.colab" in sys.modules


def set_up(notebook_folder: str) -> None:
    """On Colab: install requirements-colab.txt (Colab's own torch and Jupyter are left alone),
    mount Google Drive for the artifacts, and move into `notebook_folder` of the course, where
    the notebook's relative paths start. Elsewhere the README's `pip install -e .` did it all."""
    if not on_colab():
        return
    if not INSTALLED_MARK.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r",
                        str(COLAB_COURSE / "requirements-colab.txt")], check=True)
        INSTALLED_MARK.touch()
    from google.colab import drive      # only on Colab
    drive.mount("/content/drive")
    os.environ.setdefault("LLM_ARTIFACTS", COLAB_ARTIFACTS)
    os.environ.setdefault("LLM_LOCAL_COPIES", COLAB_LOCAL_COPIES)
    os.chdir(COLAB_COURSE / notebook_folder)
