"""Fine-tuning only on the objects the base model stored: do the held-out answers gain?

    LLM_PROFILE=cpu python -m benchmarks.stored_only

Fine-tuning on facts a model does not know teaches it to make answers up (Gekhman et al., "Does
Fine-Tuning LLMs on New Knowledge Encourage Hallucinations?", arXiv 2405.05904). The lever: drop
from fine-tuning's training split every object of the fine-tuning half whose summary the base
model does not write after ``<name>:`` (notebook 06's recall probe); the made-up names, the
small talk and the validation split stay as they are.

Two rows, each fine-tuned from the profile run's base model (notebooks 01-04 must have run) with
the profile's settings, in a folder of its own (artifacts/<profile>/benchmarks/stored_only/<row>/),
then asked what notebook 07 asks, greedily:

- all objects: stage 05's training split, as the notebooks write it (it should give notebook 07's
  "fine-tuned (06)" column: the run is deterministic on one machine);
- stored objects only: the same without the objects the base model does not recall.
"""

from __future__ import annotations

import shutil

from python_files.artifacts import Artifacts
from python_files.checkpoint import Checkpoints, load_model
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.profiles import Profile, active_profile
from python_files.qa_eval import answer_all, format_rate, recalled, small_talk, summary_table
from python_files.sft import finetune
from python_files.sft_data import all_conversations, prepare_sft_data
from python_files.tokenizer import TextTokenizer
from python_files.world import course_questions

RATES = ("fine-tuning objects", "held-out objects", "held-out, untaught phrasing", "made-up names")


def row_artifacts(profile: Profile, row: str) -> Artifacts:
    """A folder of the row's own, with the profile run's tokenizer and base model copied in."""
    artifacts = Artifacts.for_profile(profile.name)
    row_folder = artifacts.benchmark_row("stored_only", row)
    for source, copy in ((Checkpoints(artifacts.checkpoints("pretrain")).best, Checkpoints(row_folder.checkpoints("pretrain")).best),
                         (artifacts.pretrain_meta, row_folder.pretrain_meta)):
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts.require(source, "04_pretraining"), copy)
    return row_folder


def not_recalled(profile: Profile, tokenizer: TextTokenizer, questions: dict, device) -> set[str]:
    """The objects of the fine-tuning half whose summary the base model does not recall."""
    artifacts = Artifacts.for_profile(profile.name)
    base = load_model(artifacts.require(Checkpoints(artifacts.checkpoints("pretrain")).best, "04_pretraining"),
                      device, tokenizer.sha256)
    fine_tuning = [q for q in questions["train"] if q.known and q.group == "fine-tuning"]
    return {s.question.name for s in recalled(base, tokenizer, fine_tuning) if not s.correct}


def run_row(profile: Profile, row: str, questions: dict, tokenizer: TextTokenizer, device) -> str:
    """Stage 05 with `questions`, stage 06, then the answers: one printed row."""
    artifacts = row_artifacts(profile, row)
    conversations, report = all_conversations(questions, profile.seed, profile.data.sft_mixture)
    prepare_sft_data(conversations, questions, tokenizer, artifacts, profile.model.context_length, report, profile.seed)
    finetune(profile, artifacts, device, progress=False)
    model = load_model(Checkpoints(artifacts.checkpoints("sft")).best, device, tokenizer.sha256)
    curriculum = list({q.name: q for q in questions["train"] if q.known and q.aspect == "summary"}.values())  # as 07 asks
    table = summary_table(answer_all(model, tokenizer, curriculum + questions["test"]))
    talk = small_talk(model, tokenizer)
    rates = "".join(f"{format_rate(table[kind]['correct'], table[kind]['correct_95']):<16}" for kind in RATES)
    return f"{row:<22} {rates}{sum(in_form for *_, in_form in talk)} of {len(talk)}"


@sentence_on_error
def main() -> None:
    profile, device = active_profile(), default_device()
    artifacts = Artifacts.for_profile(profile.name)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    questions = course_questions(profile.data, profile.seed)
    dropped = not_recalled(profile, tokenizer, questions, device)
    stored_only = {**questions, "train": [q for q in questions["train"] if q.name not in dropped]}
    objects = {q.name for q in questions["train"] if q.known and q.group == "fine-tuning"}
    print(f"{profile.summary()}\nthe base model does not recall {len(dropped)} of the {len(objects)} objects of "
          f"the fine-tuning half: {', '.join(sorted(dropped))}\n"
          f"their {len(questions['train']) - len(stored_only['train'])} questions are dropped\n")
    print(f"{'row':<22} " + "".join(f"{kind[:15]:<16}" for kind in RATES) + "small talk")
    for row, row_questions in (("all objects", questions), ("stored objects only", stored_only)):
        print(run_row(profile, row, row_questions, tokenizer, device), flush=True)


if __name__ == "__main__":
    main()
