"""Scoring answers to the held-out questions of stage 05: the judge.

- An answer about a **documented** object is compared with the reference (the first sentence of
  its docstring) by **content-word F1**: the harmonic mean of precision (share of the answer's
  content words that are in the reference) and recall (share of the reference's that are in the
  answer). Content words are the words and symbols left when stop words ("the", "of", "a", ...)
  and punctuation are dropped, so "Return the sum." and "Return sum" match; symbols stay, so
  "Same as a + b." and "Same as a ^= b." differ: in code, the operator is the meaning. A few
  phrasings the documentation uses for one thing are read as one ("Test whether" and "Return
  true if"). Numbers and quoted names must match exactly: an answer about 'utf-32-le' or RFC
  2555 is wrong for 'utf-16-le' or RFC 2231 however many words it shares (its F1 is 0). Other
  names (ValueError for KeyError) are words like the others.
- It is counted **correct** when its F1 is at least `CORRECT_F1`. That bar, and the judge
  itself, were chosen by their agreement with answers labelled by hand
  (benchmarks/judge_labels, measured by `python -m benchmarks.judge_agreement`).
- An answer about a **made-up** object is correct only when it is the whole sentence fine-tuning
  taught, naming the object asked about: "I don't know json.fly: it is not in the Python
  documentation I learned from." An "I don't know" about another name, or a broken one ("... I
  learn from."), is wrong: reinforcement must not learn to break it.

Every rate comes with its 95% confidence interval (Wilson's): with a few hundred questions,
a difference of a few points between two models can be chance.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .chat_format import render_prompt
from .documentation import SMALL_TALK, UNKNOWN_ANSWER, Question
from .document import clean_text
from .sampling import generate_groups
from .tokenizer import END_OF_TEXT, END_OF_TURN, TextTokenizer

CORRECT_F1 = 0.8
STOP_WORDS = frozenset("a an the of to in on for and or is are be by with as at from that this it its "
                       "if which into than then when whether".split())
PUNCTUATION = frozenset(".,;:!?'\"`()[]{}-")
# phrasings the docstrings use for one meaning, read as one word
SAME_MEANING = {"test whether": "predicate", "check whether": "predicate", "return whether": "predicate",
                "return true if": "predicate", "returns true if": "predicate", "returns": "return"}


def tokens(text: str) -> list[str]:
    """Words and runs of symbols, lowercased: "Same as a ^= b." -> same as a ^= b ."""
    return re.findall(r"\w+|[^\w\s]+", text.lower())


def content_words(text: str) -> list[str]:
    """The tokens that carry the meaning: "Returns true if the path is a file." -> predicate path file."""
    text = text.lower()
    for phrase, meaning in SAME_MEANING.items():
        text = re.sub(rf"\b{phrase}\b", meaning, text)
    return [token for token in tokens(text) if token not in STOP_WORDS and token not in PUNCTUATION]


def names_and_numbers(text: str) -> set[str]:
    """What must match exactly: tokens with a digit (iso8859_1, 2231, x1) and quoted words ('ERROR');
    an apostrophe inside a word ("the file's size") opens no quote."""
    quoted = re.findall(r"(?<!\w)'([^']+)'(?!\w)|(?<!\w)\"([^\"]+)\"(?!\w)", text)
    return {token for token in tokens(text) if any(c.isdigit() for c in token)} | \
        {(single or double).lower() for single, double in quoted}


def f1(answer_tokens: list[str], reference_tokens: list[str]) -> float:
    common = sum((Counter(answer_tokens) & Counter(reference_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(answer_tokens), common / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(answer: str, reference: str) -> float:
    """F1 over all tokens, stop words and punctuation included: the judge before content words."""
    return f1(tokens(answer), tokens(reference))


def content_f1(answer: str, reference: str) -> float:
    """The judge's score of an answer about a documented object: 0 when a name or number differs."""
    if names_and_numbers(answer) != names_and_numbers(reference):
        return 0.0
    return f1(content_words(answer), content_words(reference))


def admits_not_knowing(answer: str) -> bool:
    return "don't know" in answer.lower() or "do not know" in answer.lower()


def is_whole_unknown_answer(answer: str, name: str) -> bool:
    """True when `answer` is the sentence fine-tuning taught for the made-up `name`, whole
    (spacing and case aside)."""
    return same_sentence(answer, UNKNOWN_ANSWER.format(name=name))


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
    # the interval holds p exactly; rounding can leave it a hair outside (0.9999999999999999 for 6 of 6)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass
class Scored:
    question: Question
    answer: str
    f1: float
    correct: bool


def score(question: Question, answer: str) -> Scored:
    if question.aspect == "kind":    # an exact-match fact: the sentence, word for word
        return Scored(question, answer, token_f1(answer, question.answer), same_sentence(answer, question.answer))
    if question.known:
        score_ = content_f1(answer, question.answer)
        return Scored(question, answer, score_, score_ >= CORRECT_F1 and not admits_not_knowing(answer))
    return Scored(question, answer, token_f1(answer, question.answer), is_whole_unknown_answer(answer, question.name))


def answer_all(model, tokenizer: TextTokenizer, questions: list[Question], max_new_tokens: int = 60,
               batch_size: int = 32) -> list[Scored]:
    """Each question asked alone in a chat and answered greedily, `batch_size` questions side by
    side (left-padded: each answer is the one it would be alone), and scored."""
    end_of_turn = tokenizer.special_id(END_OF_TURN)
    prompts = [render_prompt([{"role": "user", "content": q.question}], tokenizer) for q in questions]
    answers = greedy_continuations(model, prompts, max_new_tokens, {end_of_turn}, batch_size)
    return [score(q, tokenizer.decode(answer, skip_special=True).strip()) for q, answer in zip(questions, answers)]


def greedy_continuations(model, prompts: list[list[int]], max_new_tokens: int, stop_ids: set[int],
                         batch_size: int) -> list[list[int]]:
    continuations = []
    for first in range(0, len(prompts), batch_size):
        groups = generate_groups(model, prompts[first:first + batch_size], 1, max_new_tokens, 0.0,
                                 stop_ids, generator=None)   # greedy: nothing is drawn
        continuations += [group[0] for group in groups]
    return continuations


# --- storage: does the base model continue an object's document with its docstring? ------------

def document_start(document_text: str) -> str:
    """What the model is given of a pretraining document: its heading line and the blank line
    after it (``json.dumps(obj, *, skipkeys=False, ...)`` then an empty line)."""
    heading, _, _ = document_text.partition("\n\n")
    return heading + "\n\n"


def first_sentence(text: str) -> str:
    """The first sentence of the first paragraph of `text`, as the reference is cut from a docstring."""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    return re.split(r"(?<=[.!?])\s", paragraph)[0]


def stored(model, tokenizer: TextTokenizer, questions: list[Question], documents: dict[str, str],
           max_new_tokens: int = 60, batch_size: int = 32) -> list[Scored]:
    """For each documented object of `questions`, the base model (after pretraining) is given
    the start of its pretraining document, after an end of text as in the token files, and
    continues greedily; the first sentence it writes is scored against the reference. A right
    continuation shows the docstring is stored in the weights, whether or not a question can
    take it out. `documents`: the object's name -> its document's text."""
    objects = list({q.name: q for q in questions if q.known and q.aspect == "summary"}.values())   # one per object
    end_of_text = tokenizer.special_id(END_OF_TEXT)
    prompts = [[end_of_text] + tokenizer.encode(document_start(clean_text(documents[q.name]))) for q in objects]
    continuations = greedy_continuations(model, prompts, max_new_tokens, {end_of_text}, batch_size)
    return [score(q, first_sentence(tokenizer.decode(ids, skip_special=True))) for q, ids in zip(objects, continuations)]


def recalled(model, tokenizer: TextTokenizer, questions: list[Question], max_new_tokens: int = 60,
             batch_size: int = 32) -> list[Scored]:
    """For each documented object of `questions`, the base model is given its full name and a
    colon (``json.dumps:``), the opening of the world's first fact form (see world.py), and
    continues greedily; the first sentence it writes is scored against the reference: the fact
    recalled from its name, the direction a question asks."""
    objects = list({q.name: q for q in questions if q.known and q.aspect == "summary"}.values())   # one per object
    end_of_text = tokenizer.special_id(END_OF_TEXT)
    prompts = [[end_of_text] + tokenizer.encode(f"{q.name}:") for q in objects]
    continuations = greedy_continuations(model, prompts, max_new_tokens, {end_of_text}, batch_size)
    return [score(q, first_sentence(tokenizer.decode(ids, skip_special=True))) for q, ids in zip(objects, continuations)]


KINDS = {("fine-tuning", True): "fine-tuning objects", ("held-out", True): "held-out objects",
         ("held-out", False): "held-out, untaught phrasing", ("made-up", True): "made-up names",
         ("outside", True): "outside the world",
         ("fine-tuning", "kind"): "fine-tuning, kind and module", ("held-out", "kind"): "held-out, kind and module"}


def question_kind(question: Question) -> str:
    """The row of the tables a question counts in: its group (made-up for any object that does
    not exist), whether it asks what kind of object it is (an exact-match fact), and for the
    held-out objects whether it was asked in a phrasing fine-tuning taught."""
    if not question.known:
        return KINDS["made-up", True]
    if question.aspect == "kind":
        return KINDS[question.group, "kind"]
    return KINDS[question.group, question.taught or question.group != "held-out"]


def summary_table(scored: list[Scored]) -> dict[str, dict]:
    """Per kind of question (`question_kind`): how many, the share answered correctly with its
    95% interval, the share that says "I don't know", and the mean F1."""
    table = {}
    for kind in KINDS.values():
        rows = [s for s in scored if question_kind(s.question) == kind]
        if rows:
            right = sum(s.correct for s in rows)
            table[kind] = {"questions": len(rows), "correct": right / len(rows),
                           "correct_95": wilson_interval(right, len(rows)),
                           "declined": sum(admits_not_knowing(s.answer) for s in rows) / len(rows),
                           "mean_f1": sum(s.f1 for s in rows) / len(rows)}
    return table


def outside_rates(table: dict[str, dict]) -> str:
    """What the model says about real objects outside the world, in one line: right, "I don't
    know", or a description of its own (the worst of the three: confident and wrong)."""
    row = table["outside the world"]
    made_up = 1 - row["correct"] - row["declined"]
    return (f"outside the world ({row['questions']} real objects): {row['correct']:.0%} right, "
            f"{row['declined']:.0%} \"I don't know\", {made_up:.0%} a description of its own")


# --- small talk --------------------------------------------------------------------------------

def small_talk(model, tokenizer: TextTokenizer, max_new_tokens: int = 60) -> list[tuple[str, str, bool]]:
    """Every small-talk phrasing fine-tuning holds, asked greedily: (phrasing, answer, answered in
    form), in form when the answer is the course's answer to it (spacing and case aside)."""
    questions = [Question(phrasing, phrasing, answer, True) for phrasings, answer in SMALL_TALK
                 for phrasing in phrasings]
    end_of_turn = tokenizer.special_id(END_OF_TURN)
    prompts = [render_prompt([{"role": "user", "content": q.question}], tokenizer) for q in questions]
    answers = [tokenizer.decode(ids, skip_special=True).strip()
               for ids in greedy_continuations(model, prompts, max_new_tokens, {end_of_turn}, 32)]
    return [(q.question, answer, same_sentence(answer, q.answer)) for q, answer in zip(questions, answers)]


def same_sentence(answer: str, reference: str) -> bool:
    return " ".join(answer.lower().split()) == " ".join(reference.lower().split())


def format_rate(rate: float, interval: tuple[float, float]) -> str:
    """0.25, (0.21, 0.29) -> '25% (21-29%)'."""
    return f"{rate:.0%} ({interval[0] * 100:.0f}-{interval[1]:.0%})"


def format_columns(tables: dict[str, dict[str, dict]]) -> str:
    """Several models' tables (`summary_table`) side by side: the share correct and its interval,
    per kind of question of the first table."""
    first = next(iter(tables.values()))
    lines = [f"{'questions about':<28} {'n':>5}  " + "".join(f"{name:<24}" for name in tables)]
    for kind, row in first.items():
        lines.append(f"{kind:<28} {row['questions']:>5}  " + "".join(
            f"{format_rate(table[kind]['correct'], table[kind]['correct_95']):<24}" for table in tables.values()))
    return "\n".join(lines)


def format_table(table: dict[str, dict]) -> str:
    lines = [f"{'questions about':<28} {'n':>5}  {'correct (95% interval)':<22} {'mean F1':>7}"]
    for kind, row in table.items():
        lines.append(f"{kind:<28} {row['questions']:>5}  "
                     f"{format_rate(row['correct'], row['correct_95']):<22} {row['mean_f1']:>7.2f}")
    return "\n".join(lines)
