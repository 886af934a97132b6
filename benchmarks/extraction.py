"""Which lever lets questions take the stored facts out? The held-out rates, one row per lever.

    LLM_PROFILE=cpu python -m benchmarks.extraction [--rows "data.mixed_questions=0" "" "data.mixed_copies=6"]

Each row is the profile with some settings changed (dotted names, as LLM_SETTINGS writes them;
"" is the profile as it is), run through stages 02, 04, 05 and 06 as the notebooks run them, in
a folder of its own (artifacts/<profile>/benchmarks/extraction/<row>/, with the profile run's
tokenizer copied in: notebook 01 must have run). Then, greedily, as notebook 07 asks:

- recalled: the base model of the row writes the held-out objects' summaries after ``<name>:``;
- the fine-tuned model's answers to the held-out objects (in a taught phrasing and in one
  fine-tuning never used), to the made-up names, and the small talk answered in form.

Every row keeps the profile's pretraining and fine-tuning steps, so the rows cost the same
minutes (about 12 a row under cpu on 2 cores). A finished row keeps results.json in its folder
and is not run again. The default rows: without mixed training, the profile's mixed training,
and mixed training with twice the copies.
"""

from __future__ import annotations

import argparse
import json
import re
import time

from python_files.artifacts import Artifacts, atomic_write_text
from python_files.checkpoint import Checkpoints, load_model
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.pretrain import pretrain
from python_files.pretrain_data import mixed_conversations, prepare_pretraining_data, pretraining_documents, world_readings
from python_files.profiles import Profile, active_profile, parse_settings, with_settings
from python_files.qa_eval import answer_all, format_rate, recalled, small_talk, summary_table
from python_files.sft import finetune
from python_files.sft_data import all_conversations, prepare_sft_data
from python_files.tokenizer import TextTokenizer
from python_files.world import course_questions

ROWS = ["data.mixed_questions=0", "", "data.mixed_copies=6"]
# the rates of a row; the last only where the row asks exact-match facts (data.kind_questions)
RATES = ("held-out objects", "held-out, untaught phrasing", "made-up names", "held-out, kind and module")


def row_artifacts(profile: Profile, row: str) -> Artifacts:
    """A folder of the row's own, named after its settings, with the profile run's tokenizer."""
    folder = re.sub(r"[^\w.=-]+", "_", row) or "the-profile"
    return Artifacts.for_profile(profile.name).benchmark_row("extraction", folder)


def prepare_stages(profile: Profile, artifacts: Artifacts, tokenizer: TextTokenizer) -> tuple[dict, dict]:
    """Stages 02 and 05 as their notebooks run them; the token files' meta and the questions."""
    documents, train_copies = pretraining_documents(profile.data, artifacts, profile.seed)
    meta = prepare_pretraining_data(documents, tokenizer, artifacts, profile.data.corpus, profile.model.vocab_size,
                                    profile.data.val_fraction, profile.data.tokenize_workers, train_copies,
                                    mixed_conversations(profile.data, profile.seed), profile.seed).meta
    questions = course_questions(profile.data, profile.seed)
    conversations, report = all_conversations(questions, profile.seed, profile.data.sft_mixture)
    prepare_sft_data(conversations, questions, tokenizer, artifacts, profile.model.context_length, report, profile.seed)
    return meta, questions


def rate(rows: dict, kind: str) -> dict:
    return {"correct": rows[kind]["correct"], "correct_95": rows[kind]["correct_95"]}


def run_row(profile: Profile, row: str, device) -> dict:
    """Stages 02-06 with the row's settings, then storage, the held-out answers and small talk."""
    start = time.perf_counter()
    artifacts = row_artifacts(profile, row)
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    meta, questions = prepare_stages(profile, artifacts, tokenizer)
    pretrain(profile, artifacts, device, progress=False)
    finetune(profile, artifacts, device, progress=False)
    base = load_model(Checkpoints(artifacts.checkpoints("pretrain")).best, device, tokenizer.sha256)
    model = load_model(Checkpoints(artifacts.checkpoints("sft")).best, device, tokenizer.sha256)
    test = questions["test"]
    held_out = [q for q in test if q.group == "held-out" and q.taught and q.aspect == "summary"]
    recall = [s.correct for s in recalled(base, tokenizer, held_out)]
    table = summary_table(answer_all(model, tokenizer, test))
    talk = small_talk(model, tokenizer)
    return {"row": row, "readings": world_readings(meta, profile.pretrain, profile.model.context_length),
            "recalled": sum(recall) / len(recall),
            **{kind: rate(table, kind) for kind in RATES if kind in table},
            "small talk": [sum(in_form for *_, in_form in talk), len(talk)],
            "minutes": (time.perf_counter() - start) / 60}


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=ROWS, help='settings per row, e.g. "data.mixed_copies=6" ("": the profile)')
    args = parser.parse_args()
    profile, device = active_profile(), default_device()
    row_profiles = {row: with_settings(profile, parse_settings(row)) for row in args.rows}   # a typo stops here, not after a row
    print(f"{profile.summary()}\n")
    print(f"{'row':<26} {'readings':>8} {'recalled':>8}  {'held-out':<14} {'untaught':<14} {'made-up':<14} small talk")
    for row in args.rows:
        results = row_artifacts(profile, row).root / "results.json"
        if results.exists():
            numbers = json.loads(results.read_text())
        else:
            numbers = run_row(row_profiles[row], row, device)
            atomic_write_text(results, json.dumps(numbers, indent=1))
        print(f"{row or 'the profile':<26} {numbers['readings']:>8.0f} {numbers['recalled']:>8.0%}  " + "".join(
            f"{format_rate(numbers[kind]['correct'], numbers[kind]['correct_95']):<15}"
            for kind in RATES[:3])
              + f"{numbers['small talk'][0]} of {numbers['small talk'][1]}  ({numbers['minutes']:.0f} min)"
              + (f"  kind and module: {format_rate(numbers[RATES[3]]['correct'], numbers[RATES[3]]['correct_95'])}"
                 if RATES[3] in numbers else ""), flush=True)


if __name__ == "__main__":
    main()
