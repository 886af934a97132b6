"""How many readings does a fact need? Storage against readings, on the course's own model.

    LLM_PROFILE=cpu python -m benchmarks.readings [--rows 250:name-first-long ... 500:current-mix 500] [--save FILE] [--figure PNG]

Each row pretrains the profile's model, with the profile's steps (the same in every row), on
the whole documentation (for language) plus the facts of a world of N objects (world.py: the
first N by the written rule), written as many times as makes the facts about as much text as
the documentation. So the fewer the objects, the more readings each fact gets in the same
minutes. The facts are in the world's six name-first forms (`world.name_first_forms`: the name
and the summary), or, in a lever's row (N:FORMS), in other forms: `name-first-long`, the same
openings followed by the object's other facts in a shuffled order (the first rows measured);
`current-mix`, the five forms stage 02 wrote before the world, two of them summary first.
Then the base model is asked, greedily, about up to 200 of the world's objects whose documents
pretraining read:

- stored: given the start of the object's document (its heading line), it continues with the
  docstring's first sentence;
- recalled: given ``<name>:``, it writes that sentence: the fact taken out from the name, the
  direction a question asks (notebooks 04, 06 and 07 measure storage this way).

Both are judged as notebook 07 judges an answer, with 95% intervals. Extraction after
fine-tuning is measured by the course's own run (notebook 07), at the cpu world's size. Each row
works in a folder of its own, artifacts/<profile>/benchmarks/readings/<N>[-FORMS]/, with the profile run's tokenizer
copied in (notebook 01 must have run); a finished row keeps results.json there and is not run
again. Allen-Zhu and Li (Physics of Language Models 3.3, arXiv 2404.05405) put reliable storage
at about 100 exposures per fact.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from benchmarks.machine import describe_machine
from python_files.artifacts import Artifacts, atomic_write_text
from python_files.checkpoint import Checkpoints, load_model
from python_files.corpus import PYTHON_DOCS, load_corpus
from python_files.device import default_device
from python_files.document import Document, goes_to_validation
from python_files.documentation import Question
from python_files.errors import sentence_on_error
from python_files.pretrain import pretrain
from python_files.pretrain_data import prepare_pretraining_data
from python_files.profiles import Profile, active_profile
from python_files.qa_eval import format_rate, recalled, stored, wilson_interval
from python_files.tokenizer import TextTokenizer
from python_files.seeds import seed_for
from python_files.world import FORM_OPENINGS, WORLD_SOURCE, world_documents, world_facts

def current_mix(world: list, documents: list, seed: int) -> list:
    """The lever's baseline: the world's facts in the five forms stage 02 wrote before the world
    (each that applies), two of which put the summary before the name, shuffled."""
    forms = [
        lambda f: f"{f.name}: {f.summary}",
        lambda f: f"{f.summary.rstrip('.')}: that is what {f.name} does.",
        lambda f: (f"{f.name} is a module of the Python standard library. {f.summary}" if f.name == f.module
                   else f"{f.name} belongs to the {f.module} module. {f.summary}"),
        lambda f: " ".join(f.sentences[1:]) + f" In short, {f.name}: {f.summary}" if len(f.sentences) > 1 else None,
        lambda f: f"{f.summary} It is called as {f.heading}." if "(" in f.heading else None]
    written = [Document(f"{facts.name}#fact{number}", text, WORLD_SOURCE) for facts in world
               for number, text in enumerate(form(facts) for form in forms) if text]
    random.Random(seed_for(seed, "fact forms")).shuffle(written)
    return written


def name_first_long(world: list, documents: list, seed: int) -> list:
    """The six name-first openings, each followed by the object's other facts (its module, its
    call, the docstring's other sentences) in an order of the form's own, as Physics of Language
    Models 3.1 permutes a biography's sentences: the world's first forms, three times as long."""
    rng = random.Random(seed_for(seed, "world forms"))
    written = []
    for facts in world:
        extra = [f"It is part of the {facts.module} module." if facts.name != facts.module else
                 "It is a module of the Python standard library."]
        extra += [f"It is called as {facts.heading}."] if "(" in facts.heading else []
        extra += facts.sentences[1:]
        for number, opening in enumerate(FORM_OPENINGS):
            rng.shuffle(extra)
            text = " ".join([opening.format(name=facts.name, summary=facts.summary), *extra])
            written.append(Document(f"{facts.name}#form{number}", text, WORLD_SOURCE))
    rng.shuffle(written)
    return written


FORMS = {"name-first": lambda world, documents, seed: world_documents(world, seed),
         "name-first-long": name_first_long,
         "current-mix": current_mix}
ASKED = 200     # world objects asked about per row: enough for intervals of about +-7 points


def row_artifacts(profile: Profile, size: int, forms_kind: str) -> Artifacts:
    """A folder of the row's own, with the profile run's tokenizer."""
    folder = str(size) if forms_kind == "name-first" else f"{size}-{forms_kind}"
    return Artifacts.for_profile(profile.name).benchmark_row("readings", folder)


def copies_for(documents: list, facts: list) -> int:
    """How many times the facts are written so that they are about as much text as the documents."""
    return max(1, round(sum(len(d.text) for d in documents) / sum(len(f.text) for f in facts)))


def rates(scored: list) -> dict:
    right = sum(s.correct for s in scored)
    return {"correct": right / len(scored), "correct_95": wilson_interval(right, len(scored)), "asked": len(scored)}


def run_row(profile: Profile, size: int, device, forms_kind: str = "name-first") -> dict:
    """Stage 02 with the world's facts, stage 04, and the base model's storage and recall."""
    start = time.perf_counter()
    artifacts = row_artifacts(profile, size, forms_kind)
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    documents = load_corpus(PYTHON_DOCS, profile.data.corpus_max_bytes)
    read = [d for d in documents if not goes_to_validation(d, profile.data.val_fraction)]
    world = [facts for facts in world_facts(documents, size) if facts.name in {d.name for d in read}]
    forms = FORMS[forms_kind](world, documents, profile.seed)
    copies = copies_for(documents, forms)
    meta = prepare_pretraining_data(documents + forms, tokenizer, artifacts, PYTHON_DOCS, profile.model.vocab_size,
                                    profile.data.val_fraction, profile.data.tokenize_workers,
                                    {WORLD_SOURCE: copies}, seed=profile.seed).meta
    pretrain(profile, artifacts, device, progress=False)
    model = load_model(Checkpoints(artifacts.checkpoints("pretrain")).best, device, tokenizer.sha256)
    config = profile.pretrain
    tokens_per_step = config.batch_size * config.grad_accum_steps * profile.model.context_length
    passes = config.max_steps * tokens_per_step / meta["splits"]["train"]["tokens"]
    asked = [Question(f.name, f"What does {f.name} do?", f.summary, True) for f in world[:ASKED]]
    texts = {d.name: d.text for d in read}
    forms_per_fact = len(forms) / len(world)
    return {"world": size, "forms kind": forms_kind, "objects read": len(world), "forms": forms_per_fact,
            "copies": copies, "passes": passes, "readings": forms_per_fact * copies * passes,
            "facts share of training tokens": meta["train_tokens_by_source"].get(WORLD_SOURCE, 0)
            / meta["splits"]["train"]["tokens"],
            "stored": rates(stored(model, tokenizer, asked, texts)),
            "recalled": rates(recalled(model, tokenizer, asked)),
            "minutes": (time.perf_counter() - start) / 60}


def markdown_table(table: dict) -> str:
    """The rows as the README shows them (a test checks that the README holds this table)."""
    lines = ["| world (objects) | forms | readings per fact | facts' share of the tokens | stored | recalled from the name |",
             "|---|---|---|---|---|---|"]
    kinds = ["name-first-long", "current-mix", "name-first"]   # the sweep of worlds, a lever, the course's forms
    for row in sorted(table["rows"], key=lambda row: (kinds.index(row["forms kind"]), -row["readings"])):
        lines.append(f"| {row['world']:,} | {row['forms kind']} | {row['readings']:.0f} | "
                     f"{row['facts share of training tokens']:.0%} | "
                     f"{format_rate(row['stored']['correct'], row['stored']['correct_95'])} | "
                     f"{format_rate(row['recalled']['correct'], row['recalled']['correct_95'])} |")
    return "\n".join(lines)


def draw(table: dict):
    """Recall from the name against readings per fact, on a log axis, with 95% intervals: the
    sweep of worlds as a curve, each other kind of forms as its own points."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    kinds = {"name-first-long": ("o", "-"), "current-mix": ("^", "none"), "name-first": ("s", "none")}
    for kind, (marker, line) in kinds.items():
        rows = sorted((row for row in table["rows"] if row["forms kind"] == kind), key=lambda row: row["readings"])
        if rows:
            rates = [row["recalled"]["correct"] * 100 for row in rows]
            errors = [[(row["recalled"]["correct"] - row["recalled"]["correct_95"][0]) * 100 for row in rows],
                      [(row["recalled"]["correct_95"][1] - row["recalled"]["correct"]) * 100 for row in rows]]
            axis.errorbar([row["readings"] for row in rows], rates, yerr=errors, marker=marker, linestyle=line,
                          capsize=3, label=f"recalled, {kind} forms")
    rows = sorted((row for row in table["rows"] if row["forms kind"] == "name-first-long"), key=lambda row: row["readings"])
    for row in rows:
        axis.annotate(f"{row['world']:,}\nobjects", (row["readings"], 107), fontsize=7, ha="center",
                      annotation_clip=False)
    axis.axvline(100, color="grey", linestyle=":", label="100 readings (Physics of LMs 3.3)")
    axis.set_xscale("log")
    axis.set_xlabel("readings per fact in pretraining (log scale)")
    axis.set_ylabel("facts recalled from the name (%)")
    axis.set_ylim(0, 104)
    axis.set_title("How many readings does a fact need? (same model, same steps)", pad=28)
    axis.legend(fontsize=8, loc="center right")
    figure.tight_layout()
    return figure


def parse_row(text: str) -> tuple[int, str]:
    """"500" or "500:current-mix": a world's size, and the forms its facts are written in."""
    size, _, forms = text.partition(":")
    if forms and forms not in FORMS:
        raise SystemExit(f"{text}: the forms after the colon are one of {', '.join(FORMS)}")
    return int(size), forms or "name-first"


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=[f"{n}:name-first-long" for n in (250, 500, 1000, 2000, 5000)]
                        + ["500:current-mix", "500"],
                        help="worlds to measure, N or N:FORMS (FORMS: " + ", ".join(FORMS) + "; the levers' rows)")
    parser.add_argument("--save", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--figure", type=Path, help="also draw storage and recall against readings (a PNG)")
    args = parser.parse_args()
    profile, device = active_profile(), default_device()
    print(f"{describe_machine()}\n{profile.summary()}\n")
    print(f"{'world':>6} {'forms':<17} {'readings':>9} {'stored':<14} {'recalled':<14} {'facts':>6}")
    table = {"machine": describe_machine(), "profile": profile.summary(), "rows": []}
    for size, forms in map(parse_row, args.rows):
        results = row_artifacts(profile, size, forms).root / "results.json"
        row = json.loads(results.read_text()) if results.exists() else run_row(profile, size, device, forms)
        atomic_write_text(results, json.dumps(row, indent=1))
        table["rows"].append(row)
        print(f"{size:>6} {forms:<17} {row['readings']:>9.0f} "
              f"{format_rate(row['stored']['correct'], row['stored']['correct_95']):<14} "
              f"{format_rate(row['recalled']['correct'], row['recalled']['correct_95']):<14} "
              f"{row['facts share of training tokens']:>6.0%}  ({row['minutes']:.0f} min)", flush=True)
        if args.save:
            atomic_write_text(args.save, json.dumps(table, indent=1))
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")     # a file, no window
        draw(table).savefig(args.figure, dpi=120)


if __name__ == "__main__":
    main()
