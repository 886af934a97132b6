"""The answer judge of notebook 07 against answers labelled by hand (benchmarks/judge_labels)."""

from benchmarks.judge_agreement import COMMITTED_LABELS, all_labels, as_question, counts, draw, kappa, read_labels, truth
from python_files.qa_eval import score

LABELS = all_labels()
COMMITTED = read_labels(COMMITTED_LABELS)


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


def test_the_model_the_judge_judges_now_has_200_labels_of_its_own_and_the_judge_agrees_on_them():
    assert len(COMMITTED) >= 200 and {label["model"] for label in COMMITTED} <= {"after 06", "after 06b"}
    assert {label["group"] for label in COMMITTED} == {"held-out", "made-up", "outside"}
    assert all(label["why"].strip() for label in COMMITTED), "every label says why"
    c = agreement(COMMITTED)
    assert (c["both right"] + c["both wrong"]) / sum(c.values()) >= 0.9 and kappa(c) >= 0.6


def test_a_draw_takes_each_group_in_its_share_and_keeps_what_a_label_needs():
    answers = [{"name": f"m.f{i}", "question": f"What does m.f{i} do?", "reference": "Return x.", "answer": "Return x.",
                "group": group, "taught": taught} for i in range(300)
               for group, taught in (("held-out", i % 2 == 0), ("made-up", True), ("outside", True))]
    drawn = draw({"model": "fine-tuned, then reinforced for 4 steps (06b)", "answers": answers})
    assert len(drawn) == 200 and sum(d["group"] == "made-up" for d in drawn) == 25
    assert all(d["model"] == "after 06b" and d["kind"] == ("made-up" if d["group"] == "made-up" else "documented")
               for d in drawn)
    assert draw({"model": "x (06b)", "answers": answers}) == drawn, "the same answers, the same draw"


def test_on_documented_objects_the_judge_finds_most_right_answers_and_few_wrong_ones():
    # most labels are "wrong": agreement alone would pass a judge that calls everything wrong
    c = agreement([label for label in LABELS if label["kind"] != "made-up"])
    assert c["both right"] / (c["both right"] + c["reader only"]) >= 0.5, "recall of the right answers"
    assert c["both right"] / (c["both right"] + c["judge only"]) >= 0.7, "precision of the right verdicts"
    assert kappa(c) >= 0.6


def test_made_up_names_are_judged_as_the_reader_judges_them():
    c = agreement([label for label in LABELS if label["kind"] == "made-up"])
    assert c["judge only"] == 0 and c["reader only"] == 0
