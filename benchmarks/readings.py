"""How many readings does a fact need? Storage against readings, on the course's own model.

    LLM_PROFILE=cpu python -m benchmarks.readings [--worlds 250 500 1000 2000 5000] [--save FILE] [--figure PNG]

Each row pretrains the profile's model, with the profile's steps (the same in every row), on
the whole documentation (for language) plus the facts of a world of N objects (world.py: the
first N by the written rule), each in six name-first forms, written as many times as makes the
facts about as much text as the documentation. So the fewer the objects, the more readings
each fact gets in the same minutes. Then the base model is asked, greedily, about up to 200 of
the world's objects whose documents pretraining read:

- stored: given the start of the object's document, it continues with the docstring's first
  sentence (as notebook 06 measures storage);
- recalled: given ``<name>:``, it writes that sentence: the fact taken out from the name, the
  direction a question asks.

Both are judged as notebook 07 judges an answer, with 95% intervals. Extraction after
fine-tuning is not measured here (it needs stage 05 on the same world). Each row works in a
folder of its own, artifacts/<profile>/benchmarks/readings/<N>/, with the profile run's tokenizer
copied in (notebook 01 must have run); a finished row keeps results.json there and is not run
again. Allen-Zhu and Li (Physics of Language Models 3.3, arXiv 2404.05405) put reliable storage
at about 100 exposures per fact.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from benchmarks.machine import describe_machine
from python_files.artifacts import Artifacts, atomic_write_text
from python_files.checkpoint import Checkpoints, load_model
from python_files.corpus import PYTHON_DOCS, load_corpus
from python_files.device import default_device
from python_files.documentation import FACTS_SOURCE, Question
from python_files.pretrain import pretrain
from python_files.pretrain_data import goes_to_validation, prepare_pretraining_data
from python_files.profiles import Profile, active_profile
from python_files.qa_eval import format_rate, recalled, stored, summary_table
from python_files.tokenizer import TextTokenizer
from python_files.world import FORM_OPENINGS, world_documents, world_facts

ASKED = 200     # world objects asked about per row: enough for intervals of about +-7 points


def row_artifacts(profile: Profile, size: int) -> Artifacts:
    """A folder of the row's own, with the profile run's tokenizer."""
    base = Artifacts.for_profile(profile.name)
    artifacts = Artifacts(base.root / "benchmarks" / "readings" / str(size),
                          f"{base.shown_root}/benchmarks/readings/{size}")
    target = artifacts.root / base.tokenizer_dir.relative_to(base.root)
    if not target.exists():
        shutil.copytree(base.require(base.tokenizer_dir, "01_tokenizer"), target, ignore=shutil.ignore_patterns(".lock"))
    return artifacts


def copies_for(documents: list, facts: list) -> int:
    """How many times the facts are written so that they are about as much text as the documents."""
    return max(1, round(sum(len(d.text) for d in documents) / sum(len(f.text) for f in facts)))


def rates(scored: list) -> dict:
    row = summary_table(scored)["documented objects"]
    return {"correct": row["correct"], "correct_95": row["correct_95"], "asked": row["questions"]}


def run_row(profile: Profile, size: int, device) -> dict:
    """Stage 02 with the world's facts, stage 04, and the base model's storage and recall."""
    start = time.perf_counter()
    artifacts = row_artifacts(profile, size)
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    documents = load_corpus(PYTHON_DOCS, profile.data.corpus_max_bytes)
    read = [d for d in documents if not goes_to_validation(d, profile.data.val_fraction)]
    world = [facts for facts in world_facts(documents, size) if facts.name in {d.name for d in read}]
    forms = world_documents(world, profile.seed, FACTS_SOURCE)
    copies = copies_for(documents, forms)
    meta = prepare_pretraining_data(documents + forms, tokenizer, artifacts, PYTHON_DOCS, profile.model.vocab_size,
                                    profile.data.val_fraction, profile.data.tokenize_workers,
                                    {FACTS_SOURCE: copies}, seed=profile.seed).meta
    pretrain(profile, artifacts, device, progress=False)
    model = load_model(Checkpoints(artifacts.checkpoints("pretrain")).best, device, tokenizer.sha256)
    config = profile.pretrain
    tokens_per_step = config.batch_size * config.grad_accum_steps * profile.model.context_length
    passes = config.max_steps * tokens_per_step / meta["splits"]["train"]["tokens"]
    asked = [Question(f.name, f"What does {f.name} do?", f.summary, True) for f in world[:ASKED]]
    texts = {d.name: d.text for d in read}
    return {"world": size, "objects read": len(world), "forms": len(FORM_OPENINGS), "copies": copies,
            "passes": passes, "readings": len(FORM_OPENINGS) * copies * passes,
            "facts share of training tokens": meta["train_tokens_by_source"].get(FACTS_SOURCE, 0)
            / meta["splits"]["train"]["tokens"],
            "stored": rates(stored(model, tokenizer, asked, texts)),
            "recalled": rates(recalled(model, tokenizer, asked)),
            "minutes": (time.perf_counter() - start) / 60}


def markdown_table(table: dict) -> str:
    """The rows as the README shows them (a test checks that the README holds this table)."""
    lines = ["| world (objects) | readings per fact | facts' share of the tokens | stored | recalled from the name |",
             "|---|---|---|---|---|"]
    for row in sorted(table["rows"], key=lambda row: -row["readings"]):
        lines.append(f"| {row['world']:,} | {row['readings']:.0f} | {row['facts share of training tokens']:.0%} | "
                     f"{format_rate(row['stored']['correct'], row['stored']['correct_95'])} | "
                     f"{format_rate(row['recalled']['correct'], row['recalled']['correct_95'])} |")
    return "\n".join(lines)


def draw(table: dict, path: Path) -> None:
    """Storage and recall against readings per fact, on a log axis, with 95% intervals."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(table["rows"], key=lambda row: row["readings"])
    readings = [row["readings"] for row in rows]
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    for measure, marker in (("stored", "o"), ("recalled", "s")):
        rates = [row[measure]["correct"] * 100 for row in rows]
        errors = [[(row[measure]["correct"] - row[measure]["correct_95"][0]) * 100 for row in rows],
                  [(row[measure]["correct_95"][1] - row[measure]["correct"]) * 100 for row in rows]]
        axis.errorbar(readings, rates, yerr=errors, marker=marker, capsize=3, label=measure)
    for row in rows:
        axis.annotate(f"{row['world']:,}\nobjects", (row["readings"], 103), fontsize=7, ha="center",
                      annotation_clip=False)
    axis.axvline(100, color="grey", linestyle=":", label="100 readings (Physics of LMs 3.3)")
    axis.set_xscale("log")
    axis.set_xlabel("readings per fact in pretraining (log scale)")
    axis.set_ylabel("share of world objects (%)")
    axis.set_ylim(0, 100)
    axis.set_title("How many readings does a fact need? (same model, same steps)", pad=28)
    axis.legend(fontsize=8, loc="center right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[250, 500, 1000, 2000, 5000])
    parser.add_argument("--save", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--figure", type=Path, help="also draw storage and recall against readings (a PNG)")
    args = parser.parse_args()
    profile, device = active_profile(), default_device()
    print(f"{describe_machine()}\n{profile.summary()}\n")
    print(f"{'world':>6} {'readings':>9} {'stored':<14} {'recalled':<14} {'facts':>6}")
    table = {"machine": describe_machine(), "profile": profile.summary(), "rows": []}
    for size in args.worlds:
        results = row_artifacts(profile, size).root / "results.json"
        row = json.loads(results.read_text()) if results.exists() else run_row(profile, size, device)
        atomic_write_text(results, json.dumps(row, indent=1))
        table["rows"].append(row)
        print(f"{size:>6} {row['readings']:>9.0f} {format_rate(row['stored']['correct'], row['stored']['correct_95']):<14} "
              f"{format_rate(row['recalled']['correct'], row['recalled']['correct_95']):<14} "
              f"{row['facts share of training tokens']:>6.0%}  ({row['minutes']:.0f} min)", flush=True)
        if args.save:
            atomic_write_text(args.save, json.dumps(table, indent=1))
    if args.figure:
        draw(table, args.figure)


if __name__ == "__main__":
    main()
