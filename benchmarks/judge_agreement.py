"""How often the answer judge agrees with a reader: the hand labels of benchmarks/judge_labels.

    python -m benchmarks.judge_agreement
    LLM_PROFILE=cpu python -m benchmarks.judge_agreement --draw FILE   # answers of the last run of 07, to label

There are four sets of labels (`LABEL_SETS`): answers of the model before the world, of the
world's run before copy practice, of the copy-practice run computed on an earlier CPU, and of the
committed run (the judge is checked on the model it judges). `--draw` writes a
new set to label, without labels: answers that notebook 07 saved, drawn at random.

For each candidate judge of documented objects, the bar (the least F1 counted correct) is chosen
on half of the objects and the agreement measured on the other half, then the halves swap
(two-fold cross-validation, split by object so that both answers about one object fall in one
half): the figures are those of bars chosen without seeing the answers they are measured on.
The bar is chosen by Cohen's kappa, agreement beyond what chance gives: most labels are "wrong",
so a judge that calls every answer wrong already agrees on most of them, and raw agreement
would choose a bar so high that it misses most right answers.

Then the judge of `qa_eval` (its bar `CORRECT_F1`) on all labels: agreement with its 95%
interval, and per kind of label.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from python_files.artifacts import Artifacts
from python_files.errors import sentence_on_error
from python_files.profiles import active_profile

from python_files.documentation import Question
from python_files.qa_eval import (CORRECT_F1, admits_not_knowing, content_f1, content_words, f1, score,
                                  says_it_does_not_know, token_f1, tokens, wilson_interval)

LABELS = Path(__file__).parent / "judge_labels" / "labels.jsonl"
WORLD_LABELS = Path(__file__).parent / "judge_labels" / "labels_world.jsonl"
# the same settings as the committed run, computed on an earlier CPU (other weights, other answers)
COPY_PRACTICE_LABELS = Path(__file__).parent / "judge_labels" / "labels_copy_practice.jsonl"
# the committed run: the world, with copy practice (the model the judge judges now)
COMMITTED_LABELS = Path(__file__).parent / "judge_labels" / "labels_committed_run.jsonl"
LABEL_SETS = {"the model before the world": LABELS, "the world's run before copy practice": WORLD_LABELS,
              "the copy-practice run of an earlier CPU": COPY_PRACTICE_LABELS,
              "the committed run": COMMITTED_LABELS}
# what --draw takes of each group of notebook 07's answers (results.json)
DRAWN = {("held-out", True): 100, ("held-out", False): 50, ("made-up", True): 25, ("outside", True): 25}
BARS = [round(0.05 * i, 2) for i in range(4, 20)]


def read_labels(path: Path = LABELS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_labels() -> list[dict]:
    return [label for path in LABEL_SETS.values() for label in read_labels(path)]


def draw(results: dict, seed: int = 33) -> list[dict]:
    """Answers of notebook 07's saved results to label, `DRAWN` of each group, in a random order."""
    rng = random.Random(seed)
    drawn = []
    for (group, taught), count in DRAWN.items():
        answers = [a for a in results["answers"] if a["group"] == group and a["taught"] == taught
                   and a.get("aspect", "summary") == "summary"]    # a kind question needs no judge
        drawn += rng.sample(answers, min(count, len(answers)))
    rng.shuffle(drawn)
    model = "after 06b" if "06b" in results["model"] else "after 06"
    return [{"name": a["name"], "kind": "made-up" if a["group"] == "made-up" else "documented", "group": a["group"],
             "question": a["question"], "reference": a["reference"], "model": model, "answer": a["answer"]}
            for a in drawn]


def as_question(label: dict) -> Question:
    return Question(label["name"], label["question"], label["reference"], label["kind"] != "made-up")


def without_name(text: str, name: str) -> str:
    """`text` without the words of the object's name (json.dumps: "json" and "dumps")."""
    name_words = set(tokens(name.replace(".", " ").replace("_", " ")))
    return " ".join(token for token in tokens(text) if token not in name_words)


# the candidates: a labelled answer's score against its reference
CANDIDATES = {
    "token F1 (the judge before)": lambda label: token_f1(label["answer"], label["reference"]),
    "content-word F1, names and numbers free": lambda label: f1(content_words(label["answer"]),
                                                                content_words(label["reference"])),
    "content-word F1, name words dropped": lambda label: content_f1(without_name(label["answer"], label["name"]),
                                                                    without_name(label["reference"], label["name"])),
    "content-word F1 (qa_eval's judge)": lambda label: content_f1(label["answer"], label["reference"]),
}


def counts(judged: list[bool], truth: list[bool]) -> dict[str, int]:
    return {"both right": sum(j and t for j, t in zip(judged, truth)),
            "judge only": sum(j and not t for j, t in zip(judged, truth)),
            "reader only": sum(t and not j for j, t in zip(judged, truth)),
            "both wrong": sum(not j and not t for j, t in zip(judged, truth))}


def kappa(c: dict[str, int]) -> float:
    """Cohen's kappa: (agreement - agreement expected by chance) / (1 - the latter)."""
    n = sum(c.values())
    observed = (c["both right"] + c["both wrong"]) / n
    judge_yes, reader_yes = (c["both right"] + c["judge only"]) / n, (c["both right"] + c["reader only"]) / n
    chance = judge_yes * reader_yes + (1 - judge_yes) * (1 - reader_yes)
    return (observed - chance) / (1 - chance) if chance < 1 else 0.0


def half(label: dict) -> int:
    return int(hashlib.sha1(label["name"].encode("utf-8")).hexdigest(), 16) % 2


def judged(candidate: str, labels: list[dict], bar: float) -> list[bool]:
    return [CANDIDATES[candidate](label) >= bar and not admits_not_knowing(label["answer"]) for label in labels]


def cross_validated(candidate: str, labels: list[dict]) -> tuple[list[float], dict[str, int]]:
    """The bar chosen on each half, and the counts on the other half, summed."""
    bars, total = [], dict.fromkeys(("both right", "judge only", "reader only", "both wrong"), 0)
    for chosen_on in (0, 1):
        fit = [label for label in labels if half(label) == chosen_on]
        measured = [label for label in labels if half(label) != chosen_on]
        bar = max(BARS, key=lambda b: kappa(counts(judged(candidate, fit, b), truth(fit))))
        bars.append(bar)
        for key, value in counts(judged(candidate, measured, bar), truth(measured)).items():
            total[key] += value
    return bars, total


def truth(labels: list[dict]) -> list[bool]:
    return [label["label"] == "correct" for label in labels]


def row(title: str, c: dict[str, int]) -> str:
    n = sum(c.values())
    agreed = c["both right"] + c["both wrong"]
    low, high = wilson_interval(agreed, n)
    precision = c["both right"] / max(1, c["both right"] + c["judge only"])
    recall = c["both right"] / max(1, c["both right"] + c["reader only"])
    return (f"{title:<44} {agreed:>4}/{n:<4} {agreed / n:>5.1%} ({low:.1%}-{high:.1%})  kappa {kappa(c):.2f}  "
            f"precision {precision:.0%} recall {recall:.0%}  judged right {c['both right'] + c['judge only']}, "
            f"read right {c['both right'] + c['reader only']}")


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draw", type=Path, help="write answers of the last run of notebook 07 to label here")
    args = parser.parse_args()
    if args.draw:
        artifacts = Artifacts.for_profile(active_profile().name)
        drawn = draw(artifacts.read_json(artifacts.eval_results, "07_sampling"))
        args.draw.write_text("".join(json.dumps(answer) + "\n" for answer in drawn), encoding="utf-8")
        print(f"{len(drawn)} answers to label -> {args.draw}")
        return
    labels = all_labels()
    documented = [label for label in labels if label["kind"] != "made-up"]
    made_up = [label for label in labels if label["kind"] == "made-up"]
    print(f"{len(labels)} hand labels: {len(documented)} answers about documented objects "
          f"({sum(truth(documented))} read as right), {len(made_up)} about made-up ones "
          f"({sum(truth(made_up))} read as right)\n")
    print("documented objects, each bar chosen on one half of the objects and measured on the other:")
    for candidate in CANDIDATES:
        bars, c = cross_validated(candidate, documented)
        print(row(f"{candidate}, bars {bars[0]:g}/{bars[1]:g}", c))
    print("\nmade-up objects:")
    old = [says_it_does_not_know(label["answer"], label["name"]) for label in made_up]
    print(row("'I don't know' naming the object (before)", counts(old, truth(made_up))))
    new = [score(as_question(label), label["answer"]).correct for label in made_up]
    print(row("the whole sentence fine-tuning taught", counts(new, truth(made_up))))

    for name, path in LABEL_SETS.items():
        labels = read_labels(path)
        print(f"\nqa_eval's judge (bar {CORRECT_F1:g}) on the labels of {name} ({path.name}):")
        verdicts = [score(as_question(label), label["answer"]).correct for label in labels]
        print(row("all", counts(verdicts, truth(labels))))
        for kind in sorted({label["kind"] for label in labels}):
            rows = [i for i, label in enumerate(labels) if label["kind"] == kind]
            print(row(f"  {kind}", counts([verdicts[i] for i in rows], [truth(labels)[i] for i in rows])))


if __name__ == "__main__":
    main()
