"""Test settings, set at import so that nbval's notebook kernels inherit them.

nbval starts each notebook's kernel with a copy of this process's environment, so variables
must be set here (or in pytest_configure), not in fixtures.
"""

import os
import shutil
from pathlib import Path

os.environ["LLM_PROFILE"] = "ci"              # the small sizes: everything runs in minutes
os.environ["HF_HUB_OFFLINE"] = "1"            # no network: hub loaders are tested on fixtures
os.environ["TQDM_DISABLE"] = "1"              # progress bars would only clutter the test log
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("LLM_CORPUS", None)            # the tests use the embedded corpus
os.environ.pop("LLM_ARTIFACTS", None)         # ... and write under artifacts/ci/


def pytest_configure(config):
    # the notebooks resume from checkpoints they find: start every test session from nothing
    shutil.rmtree(Path(__file__).parent / "artifacts" / "ci", ignore_errors=True)
