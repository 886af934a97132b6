"""Scoring answers to the held-out questions of stage 05.

- **token F1** between an answer and the reference (the docstring's first sentence): the
  harmonic mean of precision (share of the answer's tokens that are in the reference) and
  recall (share of the reference's tokens that are in the answer). Tokens are words and runs
  of symbols, so "Same as a + b." and "Same as a ^= b." differ: in code, the operator is the
  meaning. 1 is a token-for-token match, 0 shares nothing. Crude — it ignores meaning and
  word order — but simple and transparent.
- an answer about a **known** object is counted correct when its F1 is at least 0.5;
- an answer about a **made-up** object is counted correct when it says "I don't know" and
  names the object asked about (an "I don't know" about some other name is not an answer).

Every rate comes with its 95% confidence interval (Wilson's): with a few hundred questions,
a difference of a few points between two models can be chance.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .chat import reply
from .sft_data import Question

CORRECT_F1 = 0.5


def tokens(text: str) -> list[str]:
    """Words and runs of symbols, lowercased: "Same as a ^= b." -> same as a ^= b ."""
    return re.findall(r"\w+|[^\w\s]+", text.lower())


def token_f1(answer: str, reference: str) -> float:
    answer_tokens, reference_tokens = tokens(answer), tokens(reference)
    common = sum((Counter(answer_tokens) & Counter(reference_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(answer_tokens), common / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def admits_not_knowing(answer: str) -> bool:
    return "don't know" in answer.lower() or "do not know" in answer.lower()


def says_it_does_not_know(answer: str, name: str) -> bool:
    """True when `answer` admits not knowing `name`, and names it (not some other object)."""
    return admits_not_knowing(answer) and re.search(rf"(?<![\w.]){re.escape(name)}(?!\w|\.\w)", answer) is not None


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% confidence interval of a rate (Wilson score interval: sound near 0% and 100%,
    where the textbook p +- 1.96 sqrt(p(1-p)/n) leaves [0, 1])."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Scored:
    question: Question
    answer: str
    f1: float
    correct: bool


def score(question: Question, answer: str) -> Scored:
    f1 = token_f1(answer, question.answer)
    correct = f1 >= CORRECT_F1 if question.known else says_it_does_not_know(answer, question.name)
    return Scored(question, answer, f1, correct)


def answer_all(model, tokenizer, questions: list[Question], max_new_tokens: int = 60) -> list[Scored]:
    return [score(q, reply(model, tokenizer, [{"role": "user", "content": q.question}], max_new_tokens))
            for q in questions]


def summary_table(scored: list[Scored]) -> dict[str, dict]:
    """Per kind of question: how many, the share answered correctly with its 95% interval,
    and the mean F1."""
    table = {}
    for kind, known in (("documented objects", True), ("made-up objects", False)):
        rows = [s for s in scored if s.question.known == known]
        if rows:
            right = sum(s.correct for s in rows)
            table[kind] = {"questions": len(rows), "correct": right / len(rows),
                           "correct_95": wilson_interval(right, len(rows)),
                           "mean_f1": sum(s.f1 for s in rows) / len(rows)}
    return table


def format_rate(rate: float, interval: tuple[float, float]) -> str:
    """0.25, (0.21, 0.29) -> '25% (21-29%)'."""
    return f"{rate:.0%} ({interval[0] * 100:.0f}-{interval[1]:.0%})"


def format_table(table: dict[str, dict]) -> str:
    lines = [f"{'questions about':<20} {'n':>5}  {'correct (95% interval)':<22} {'mean F1':>7}"]
    for kind, row in table.items():
        lines.append(f"{kind:<20} {row['questions']:>5}  "
                     f"{format_rate(row['correct'], row['correct_95']):<22} {row['mean_f1']:>7.2f}")
    return "\n".join(lines)
