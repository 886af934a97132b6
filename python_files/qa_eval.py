"""Scoring answers to the held-out questions of stage 05.

- **token F1** between an answer and the reference (the docstring's first sentence): the
  harmonic mean of precision (share of the answer's words that are in the reference) and
  recall (share of the reference's words that are in the answer). 1 is a word-for-word match,
  0 shares nothing. Crude — it ignores meaning and word order — but simple and transparent.
- an answer about a **known** object is counted correct when its F1 is at least 0.5;
- an answer about a **made-up** object is counted correct when it says "I don't know".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .chat import reply
from .sft_data import Question

CORRECT_F1 = 0.5


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def token_f1(answer: str, reference: str) -> float:
    common = sum((Counter(words(answer)) & Counter(words(reference))).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(words(answer)), common / len(words(reference))
    return 2 * precision * recall / (precision + recall)


def says_it_does_not_know(answer: str) -> bool:
    return "don't know" in answer.lower() or "do not know" in answer.lower()


@dataclass
class Scored:
    question: Question
    answer: str
    f1: float
    correct: bool


def score(question: Question, answer: str) -> Scored:
    f1 = token_f1(answer, question.answer)
    correct = f1 >= CORRECT_F1 if question.known else says_it_does_not_know(answer)
    return Scored(question, answer, f1, correct)


def answer_all(model, tokenizer, questions: list[Question], max_new_tokens: int = 60) -> list[Scored]:
    return [score(q, reply(model, tokenizer, [{"role": "user", "content": q.question}], max_new_tokens))
            for q in questions]


def summary_table(scored: list[Scored]) -> dict[str, dict]:
    """Per kind of question: how many, the share answered correctly, the mean F1."""
    table = {}
    for kind, known in (("documented objects", True), ("made-up objects", False)):
        rows = [s for s in scored if s.question.known == known]
        if rows:
            table[kind] = {"questions": len(rows),
                           "correct": sum(s.correct for s in rows) / len(rows),
                           "mean_f1": sum(s.f1 for s in rows) / len(rows)}
    return table


def format_table(table: dict[str, dict]) -> str:
    lines = [f"{'questions about':<20} {'n':>5} {'correct':>8} {'mean F1':>8}"]
    for kind, row in table.items():
        lines.append(f"{kind:<20} {row['questions']:>5} {row['correct']:>8.0%} {row['mean_f1']:>8.2f}")
    return "\n".join(lines)
