"""Does more text of the same kind make a better model? The whole course, once per run.

    python -m benchmarks.corpus_choice [--runs python-docs python-docs+packages \
                                        "python-docs+packages data.docs_copies=6 pretrain.max_steps=1500"]

A run is a corpus and, after it, settings of the profile (see profiles.parse_settings). For each
run the lesson notebooks run headless, top to bottom as `run_notebooks` runs them, with
`LLM_CORPUS` and `LLM_SETTINGS` set to it and a temporary artifacts folder (the course's own
artifacts and notebooks are left as they are). Then it prints side by side: the training tokens,
the best validation bits per byte (the same Python documents for every corpus: the packages'
documents only ever go to training, see pretrain_data.TRAIN_ONLY_SOURCES), notebook 07's
held-out answers with their 95% intervals (those of the latest model: after reinforcement), and
how many documented objects that model said it did not know. Under cpu a run takes from about a
quarter of an hour (800 steps) to half an hour (1,500).
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
from python_files.errors import sentence_on_error
from python_files.pretrain_data import read_pretrain_meta
from python_files.profiles import active_profile
from python_files.qa_eval import admits_not_knowing, format_rate
from python_files.run_notebooks import course_notebooks, execute


def lesson_notebooks() -> list[Path]:
    return [path for path in course_notebooks([]) if not path.stem.endswith("_solutions")]


def run_course(run: str, artifacts_folder: Path) -> Artifacts:
    """Every lesson notebook, in order, on the corpus and settings of `run`, writing under
    `artifacts_folder`."""
    corpus, _, settings = run.partition(" ")
    os.environ.update(LLM_CORPUS=corpus, LLM_SETTINGS=settings, LLM_ARTIFACTS=str(artifacts_folder))
    active_profile()                 # a mistyped setting stops here, not after an hour
    for path in lesson_notebooks():
        execute(nbformat.read(path, as_version=4), path.parent)
    return Artifacts.for_profile(active_profile().name)


def results(artifacts: Artifacts) -> dict:
    meta = read_pretrain_meta(artifacts)
    log = read_log(Checkpoints(artifacts.checkpoints("pretrain")).log)
    evaluation = json.loads(artifacts.eval_results.read_text(encoding="utf-8"))
    table, answers = evaluation["table"], evaluation["answers"]
    known, made_up = table["held-out objects"], table["made-up names"]
    return {"train tokens": f"{meta['splits']['train']['tokens']:,}",
            "val bits per byte": f"{min(line['val_bpb'] for line in log if 'val_bpb' in line):.3f}",
            "documented correct": format_rate(known["correct"], known["correct_95"]),
            "made-up IDK": format_rate(made_up["correct"], made_up["correct_95"]),
            "documented IDK": f"{documented_not_known(answers)} of {known['questions']}"}


def documented_not_known(answers: list[dict]) -> int:
    """Answers of "I don't know" to questions about documented objects: a model can score on
    made-up names by doubting every name."""
    return sum(admits_not_knowing(answer["answer"]) and not admits_not_knowing(answer["reference"])
               for answer in answers)


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=[PYTHON_DOCS, PYTHON_AND_PACKAGE_DOCS],
                        help='a corpus, then settings: "python-docs+packages data.docs_copies=6 pretrain.max_steps=1500"')
    args = parser.parse_args()
    print(active_profile().summary())
    rows = {}
    for run in args.runs:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            rows[run] = results(run_course(run, Path(folder)))
        print(f"{run}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    columns = list(next(iter(rows.values())))
    width = max(len(run) for run in rows)
    print(f"\n{'run':<{width}}  " + "  ".join(f"{c:<20}" for c in columns))
    for run, row in rows.items():
        print(f"{run:<{width}}  " + "  ".join(f"{row[c]:<20}" for c in columns))


if __name__ == "__main__":
    main()
