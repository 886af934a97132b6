"""The answer judge of notebook 07 against answers labelled by hand (benchmarks/judge_labels)."""

from benchmarks.judge_agreement import as_question, counts, kappa, read_labels, truth
from python_files.qa_eval import score

LABELS = read_labels()


def agreement(labels: list[dict]) -> dict[str, int]:
    return counts([score(as_question(label), label["answer"]).correct for label in labels], truth(labels))


def test_the_labels_cover_both_kinds_of_question_both_models_and_both_verdicts():
    kinds = {label["kind"] for label in LABELS}
    assert {"documented", "made-up", "stored"} <= kinds
    assert {label["model"] for label in LABELS} >= {"after 06", "after 06b", "after 04"}
    assert len(LABELS) >= 300 and {label["label"] for label in LABELS} == {"correct", "wrong"}
    assert all(label["why"].strip() for label in LABELS), "every label says why"


def test_the_judge_agrees_with_the_reader_on_at_least_nine_answers_in_ten():
    c = agreement(LABELS)
    assert (c["both right"] + c["both wrong"]) / sum(c.values()) >= 0.9


def test_on_documented_objects_the_judge_finds_most_right_answers_and_few_wrong_ones():
    # most labels are "wrong": agreement alone would pass a judge that calls everything wrong
    c = agreement([label for label in LABELS if label["kind"] != "made-up"])
    assert c["both right"] / (c["both right"] + c["reader only"]) >= 0.5, "recall of the right answers"
    assert c["both right"] / (c["both right"] + c["judge only"]) >= 0.7, "precision of the right verdicts"
    assert kappa(c) >= 0.6


def test_made_up_names_are_judged_as_the_reader_judges_them():
    c = agreement([label for label in LABELS if label["kind"] == "made-up"])
    assert c["judge only"] == 0 and c["reader only"] == 0
