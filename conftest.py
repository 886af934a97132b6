"""Test settings, set at import so that nbval's notebook kernels inherit them.

nbval starts each notebook's kernel with a copy of this process's environment, so variables
must be set here (or in pytest_configure), not in fixtures.

The tests write to an artifacts folder of their own, new for every test session and removed
after it: they never touch (or delete) what a learner's runs left in artifacts/. When only
some stages are tested (`pytest 04_pretraining`), the notebooks of the stages before them run
first, headless, to make their inputs.
"""

import os
import shutil
import tempfile

import nbformat
import pytest

os.environ["LLM_PROFILE"] = "ci"              # the small sizes: everything runs in minutes
os.environ["HF_HUB_OFFLINE"] = "1"            # no network: hub loaders are tested on fixtures
os.environ["TQDM_DISABLE"] = "1"              # progress bars would only clutter the test log
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("LLM_CORPUS", None)            # the tests use the embedded corpus
os.environ.pop("LLM_SETTINGS", None)          # and the ci profile as it is
os.environ.pop("LLM_DEVICE", None)            # on the device the course picks by itself
TEST_ARTIFACTS = tempfile.mkdtemp(prefix="llm-course-tests-")
os.environ["LLM_ARTIFACTS"] = TEST_ARTIFACTS


def pytest_unconfigure(config):
    shutil.rmtree(TEST_ARTIFACTS, ignore_errors=True)


def pytest_collection_finish(session):
    """Run the notebooks of the stages before the first one selected, to make its inputs."""
    from python_files.run_notebooks import course_notebooks, execute

    selected = sorted({item.path.parent.name for item in session.items if item.path.suffix == ".ipynb"})
    if not selected:
        return
    for notebook in course_notebooks([]):
        # solutions and appendices make nothing a later stage reads
        if notebook.parent.name < selected[0] and not notebook.stem.endswith("solutions") and "_appendix_" not in notebook.stem:
            print(f"\npreparing the inputs of {selected[0]}: running {notebook.name}")
            try:
                execute(nbformat.read(notebook, as_version=4), notebook.parent)
            except Exception as error:
                pytest.exit(f"{notebook.name}, run to prepare {selected[0]}, failed: {error}", returncode=1)
