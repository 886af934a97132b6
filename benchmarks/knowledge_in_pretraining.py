"""Can the model say what it read? Knowledge augmentation and mixed training, side by side.

    LLM_PROFILE=cpu python -m benchmarks.knowledge_in_pretraining [--rows neither augmentation mixed both]
                                                                 [--fact-forms 3] [--mixed-questions 0.5]

Allen-Zhu and Li (Physics of Language Models 3.1, arXiv 2309.14316) found that facts seen in
one form are stored but cannot be taken out by questions, and become extractable when
pretraining sees them in several forms (augmentation) or mixed with questions about them. Each
row writes stage 02's token files with its settings, then pretrains, fine-tunes and reinforces
with the profile's settings (same model, same steps), and measures on the held-out objects with
the judge of notebook 07:

- stored: the base model, given the start of a held-out object's pretraining document (the
  objects whose document pretraining read), continues with the docstring's first sentence;
- extracted: the chat model answers the question about it, after 06 and after 06b; and made-up
  names answered with the whole "I don't know".

Each row works in a folder of its own, artifacts/<profile>/benchmarks/knowledge/<row>/, with
the tokenizer and the fine-tuning files of the profile's own run copied in (they do not depend
on pretraining's data: notebooks 01 and 05 must have run). A finished row keeps its figures in
results.json there and is not run again, so an interrupted benchmark continues where it stopped
(delete the folder to rerun a row). With --save, the table is also written as JSON (notebook 06
and the README show the committed one, readme_materials/knowledge_in_pretraining.json).
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
from python_files.device import default_device
from python_files.documentation import question_documents
from python_files.pretrain import pretrain
from python_files.pretrain_data import (goes_to_validation, mixed_conversations, prepare_pretraining_data,
                                        pretraining_documents)
from python_files.profiles import Profile, active_profile, with_settings
from python_files.qa_eval import answer_all, format_rate, stored, summary_table
from python_files.reinforce import reinforce
from python_files.sft import finetune
from python_files.sft_data import read_questions
from python_files.tokenizer import TextTokenizer


def rows(fact_forms: int, mixed_questions: float) -> dict[str, dict]:
    return {"neither": {},
            "augmentation": {"data.fact_forms": fact_forms},
            "mixed": {"data.mixed_questions": mixed_questions},
            "both": {"data.fact_forms": fact_forms, "data.mixed_questions": mixed_questions}}


def row_artifacts(profile: Profile, row: str) -> Artifacts:
    """A folder of the row's own, with the profile run's tokenizer and fine-tuning files."""
    base = Artifacts.for_profile(profile.name)
    artifacts = Artifacts(base.root / "benchmarks" / "knowledge" / row, f"{base.shown_root}/benchmarks/knowledge/{row}")
    for folder in (base.tokenizer_dir, base.sft_dir):
        target = artifacts.root / folder.relative_to(base.root)
        if not target.exists():
            shutil.copytree(base.require(folder, "01_tokenizer" if folder == base.tokenizer_dir else "05_sft_data"),
                            target, ignore=shutil.ignore_patterns(".lock"))
    return artifacts


def held_out_rates(scored) -> dict:
    table = summary_table(scored)
    return {kind: {"correct": row["correct"], "correct_95": row["correct_95"], "questions": row["questions"]}
            for kind, row in table.items()}


def run_row(profile: Profile, artifacts: Artifacts, device) -> dict:
    """Stages 02, 04, 06 and 06b in the row's folder, and the figures of each model."""
    start = time.perf_counter()
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    documents, copies = pretraining_documents(profile.data, artifacts, profile.seed)
    meta = prepare_pretraining_data(documents, tokenizer, artifacts, profile.data.corpus, profile.model.vocab_size,
                                    profile.data.val_fraction, profile.data.tokenize_workers, copies,
                                    mixed_conversations(profile.data, profile.seed), profile.seed).meta
    pretrain(profile, artifacts, device, progress=False)
    test = read_questions(artifacts, "test")
    read_in_pretraining = {document.name: document.text for document in question_documents(profile.data)
                           if not goes_to_validation(document, profile.data.val_fraction)}
    base = load_model(Checkpoints(artifacts.checkpoints("pretrain")).best, device, tokenizer.sha256)
    figures = {"train tokens by source": meta["train_tokens_by_source"],
               "stored": held_out_rates(stored(base, tokenizer, [q for q in test if q.name in read_in_pretraining],
                                               read_in_pretraining))}
    for stage, train in (("after 06", finetune), ("after 06b", reinforce)):
        train(profile, artifacts, device, progress=False)
        model = load_model(Checkpoints(artifacts.checkpoints("sft" if stage == "after 06" else "reinforce")).best,
                           device, tokenizer.sha256)
        figures[stage] = held_out_rates(answer_all(model, tokenizer, test))
    figures["minutes"] = (time.perf_counter() - start) / 60
    return figures


HEADER = f"{'row':<13} {'stored':<13} {'after 06':<13} {'after 06b':<13} {'made-up 06':<13} {'made-up 06b':<13}"


def rate(figures: dict, stage: str, kind: str) -> str:
    row = figures[stage].get(kind)
    return format_rate(row["correct"], row["correct_95"]) if row else "-"


def row_line(name: str, figures: dict) -> str:
    """A row's rates with their 95% intervals: documented objects stored and extracted, made-up
    names answered "I don't know"."""
    documented, made_up = "documented objects", "made-up objects"
    return (f"{name:<13} {rate(figures, 'stored', documented):<13} {rate(figures, 'after 06', documented):<13} "
            f"{rate(figures, 'after 06b', documented):<13} {rate(figures, 'after 06', made_up):<13} "
            f"{rate(figures, 'after 06b', made_up):<13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["neither", "augmentation", "mixed", "both"])
    parser.add_argument("--fact-forms", type=int, default=3)
    parser.add_argument("--mixed-questions", type=float, default=0.5)
    parser.add_argument("--save", type=Path, help="also write the figures of every row to this JSON file")
    args = parser.parse_args()
    profile, device = active_profile(), default_device()
    plan = rows(args.fact_forms, args.mixed_questions)
    print(f"{describe_machine()}\n{profile.summary()}\n")
    table = {"machine": describe_machine(), "profile": profile.summary(), "rows": {}}
    print(HEADER)
    for name in args.rows:
        artifacts = row_artifacts(profile, name)
        results = artifacts.root / "results.json"
        if results.exists():
            figures = json.loads(results.read_text())
        else:
            figures = {"settings": plan[name], **run_row(with_settings(profile, plan[name]), artifacts, device)}
            atomic_write_text(results, json.dumps(figures, indent=1))
        table["rows"][name] = figures
        # minutes of this row's run (a row resumed from checkpoints shows only what was left to do)
        print(f"{row_line(name, figures)} {figures['minutes']:.0f} min", flush=True)
        if args.save:   # after every row: the rows finished so far
            atomic_write_text(args.save, json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
