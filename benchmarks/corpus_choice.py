"""Does more text of the same kind make a better model? The whole course, once per corpus.

    python -m benchmarks.corpus_choice [--corpora python-docs python-docs+packages]

For each corpus the lesson notebooks run headless, top to bottom as `run_notebooks` runs them,
with `LLM_CORPUS` set to it and a temporary artifacts folder (the course's own artifacts and
notebooks are left as they are). Then it prints side by side: the training tokens, the best
validation bits per byte (the same Python documents for every corpus: the packages' documents
only ever go to training, see pretrain_data.TRAIN_ONLY_SOURCES), and notebook 07's held-out
answers with their 95% intervals. Under cpu a corpus takes about a quarter of an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nbformat

from python_files.artifacts import Artifacts
from python_files.checkpoint import Checkpoints, read_log
from python_files.corpus import PYTHON_AND_PACKAGE_DOCS, PYTHON_DOCS
from python_files.pretrain_data import read_pretrain_meta
from python_files.profiles import active_profile
from python_files.qa_eval import format_rate
from python_files.run_notebooks import course_notebooks, execute


def lesson_notebooks() -> list[Path]:
    return [path for path in course_notebooks([]) if not path.stem.endswith("_solutions")]


def run_course(corpus: str, artifacts_folder: Path) -> Artifacts:
    """Every lesson notebook, in order, on `corpus`, writing under `artifacts_folder`."""
    os.environ.update(LLM_CORPUS=corpus, LLM_ARTIFACTS=str(artifacts_folder))
    for path in lesson_notebooks():
        execute(nbformat.read(path, as_version=4), path.parent)
    return Artifacts.for_profile(active_profile().name)


def results(artifacts: Artifacts) -> dict:
    meta = read_pretrain_meta(artifacts)
    log = read_log(Checkpoints(artifacts.checkpoints("pretrain")).log)
    table = json.loads(artifacts.eval_results.read_text(encoding="utf-8"))["table"]
    known, made_up = table["documented objects"], table["made-up objects"]
    return {"train tokens": f"{meta['splits']['train']['tokens']:,}",
            "val bits per byte": f"{min(line['val_bpb'] for line in log if 'val_bpb' in line):.3f}",
            "documented correct": format_rate(known["correct"], known["correct_95"]),
            "made-up IDK": format_rate(made_up["correct"], made_up["correct_95"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=[PYTHON_DOCS, PYTHON_AND_PACKAGE_DOCS])
    args = parser.parse_args()
    print(active_profile().summary())
    rows = {}
    for corpus in args.corpora:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            rows[corpus] = results(run_course(corpus, Path(folder)))
        print(f"{corpus}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    columns = list(next(iter(rows.values())))
    width = max(len(corpus) for corpus in rows)
    print(f"\n{'corpus':<{width}}  " + "  ".join(f"{c:<20}" for c in columns))
    for corpus, row in rows.items():
        print(f"{corpus:<{width}}  " + "  ".join(f"{row[c]:<20}" for c in columns))


if __name__ == "__main__":
    main()
