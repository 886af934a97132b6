"""The world the model is asked about: few enough objects to read each fact a hundred times.

A small model stores a fact only after reading it about a hundred times (Allen-Zhu and Li,
Physics of Language Models 3.3, arXiv 2404.05405: about 1 bit per parameter at 100 exposures);
below that, no study finds facts stored reliably. A budget of a few million tokens cannot give
every one of the documentation's ~5,000 objects a hundred readings, so the course asks about a
*world*: the first N documented objects by a fixed, written-down rule,

    the modules of `WORLD_MODULES`, in that order (the standard library's everyday modules,
    running examples first: json, os.path, collections), and within a module its documented
    objects in the order of its source file; then the rest of the documentation, in its order,

and writes each world object's summary again in six forms (`name_first_forms`), every one of
which puts the object's full dotted name before what it does: the question asks name ->
summary, and a model trained on "B is what A does" does not learn "A does B" (the reversal
curse: Berglund et al., arXiv 2309.12288).

`readings` counts how many times pretraining reads each fact: the course's central number.
"""

from __future__ import annotations

import random

from dataclasses import dataclass

from .document import Document, goes_to_validation
from .documentation import Facts, Question, docs_questions, facts_of, question_documents
from .errors import CourseError
from .profiles import UNKNOWN_SHARE, DataConfig
from .seeds import seed_for

# the standard library's everyday modules, in the order the world takes them (modules written in
# C, such as itertools or math, have no docstrings in source files, so no documents to read)
WORLD_MODULES = ("json", "os.path", "collections", "re", "random", "pathlib", "functools", "shutil", "heapq",
                 "datetime", "os", "string", "statistics", "textwrap", "bisect", "copy", "operator", "typing",
                 "dataclasses", "enum", "csv", "glob", "fnmatch", "base64", "subprocess", "argparse",
                 "fractions", "tempfile", "urllib.parse", "contextlib", "abc", "uuid", "pprint", "difflib",
                 "secrets", "queue", "calendar", "zipfile", "threading", "logging", "unittest")
WORLD_RULE = ("the documented objects of the modules " + ", ".join(WORLD_MODULES) +
              ", in that order, each module's in the order of its source file, then every other "
              "documented object in the order of the documentation; the first N of them")


def module_of(name: str) -> str | None:
    """The world module an object belongs to (the longest that is a prefix of its name), or None."""
    parts = name.split(".")
    return next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in WORLD_MODULES),
                None)


def ordered_facts(documents: list[Document]) -> list[Facts]:
    """The facts of every documented object of `documents`, in the order of `WORLD_RULE`."""
    modules = {document.name for document in documents if document.text.startswith("Module ")}
    classes = {document.name for document in documents if document.text.startswith("class ")}
    documented = [facts for facts in (facts_of(document, modules, classes) for document in documents) if facts]
    # sorted is stable: within a module, and after the world's modules, the documentation's order stays
    return sorted(documented, key=lambda facts: WORLD_MODULES.index(module_of(facts.name))
                  if module_of(facts.name) else len(WORLD_MODULES))


def world_facts(documents: list[Document], size: int | None) -> list[Facts]:
    """The facts of the world's `size` objects (None: every documented object), by the rule of
    `WORLD_RULE`: the same documents give the same world, whatever the seed."""
    ordered = ordered_facts(documents)
    if size is not None and not MINIMUM <= size <= len(ordered):
        raise CourseError(f"data.world={size}: the documentation read here documents {len(ordered)} objects, and a "
                          f"world needs at least {MINIMUM} (half of it is held out): choose a world from {MINIMUM} "
                          f"to {len(ordered)} (LLM_SETTINGS), or None for all of them.")
    return ordered[:size]


MINIMUM = 2     # one object to fine-tune on, one held out
# the course's running examples: fine-tuning asks about them (notebook 07 chats about them)
RUNNING_EXAMPLES = ("json.dumps", "os.path.join", "collections.Counter")


def world_halves(world: list[Facts], seed: int) -> tuple[list[Facts], list[Facts]]:
    """The world split in two by the run's seed: the half fine-tuning asks about (with the
    running examples that are in the world), and the held-out half it never sees, which
    notebook 07 asks about. Pretraining reads both alike."""
    shuffled = sorted(world, key=lambda facts: facts.name)
    random.Random(seed_for(seed, "world halves")).shuffle(shuffled)
    held_out = [facts for facts in shuffled if facts.name not in RUNNING_EXAMPLES][:len(world) // 2]
    held_out_names = {facts.name for facts in held_out}
    # the running examples last: the first few objects of the half are kept for validation
    fine_tuning = sorted((facts for facts in shuffled if facts.name not in held_out_names),
                         key=lambda facts: facts.name in RUNNING_EXAMPLES)
    return fine_tuning, held_out


# Each form is one sentence: the object's full dotted name, then its summary. Measured with the
# cpu model on a world of 500 objects, the facts about as much text as the documentation
# (benchmarks/readings.py): these forms were read 166 times each and 98% of the facts were recalled
# from the name; forms that also carried the object's other facts, in an order of their own as
# Physics of Language Models 3.1 permutes a biography's sentences, were three times as long, so
# read 56 times each in the same share of the tokens, and 82% were recalled; stage 02's earlier
# five forms, two of them summary first, 90% at 113 readings. The question asks for the summary.
FORM_OPENINGS = ("{name}: {summary}",
                 "{name}. {summary}",
                 "{name} - {summary}",
                 "What {name} does: {summary}",
                 "{name}, in short: {summary}",
                 "About {name}: {summary}")


def name_first_forms(facts: Facts) -> list[str]:
    """The object's name and summary written in each of `FORM_OPENINGS`."""
    return [opening.format(name=facts.name, summary=facts.summary) for opening in FORM_OPENINGS]


WORLD_SOURCE = "world facts"     # the source name of the forms in stage 02's files


def world_documents(facts: list[Facts], seed: int, source: str = WORLD_SOURCE) -> list[Document]:
    """Every world object's facts in all its forms, one document each, shuffled (two forms of one
    object seldom share a training window). Facts only: never a question."""
    written = [Document(f"{object_facts.name}#form{number}", text, source)
               for object_facts in facts for number, text in enumerate(name_first_forms(object_facts))]
    random.Random(seed_for(seed, "world forms")).shuffle(written)
    return written


def readings(copies: int, steps: int, tokens_per_step: int, train_tokens: int, forms: int = len(FORM_OPENINGS)) -> float:
    """How many times pretraining reads one fact: the `forms` documents that state it, each written
    `copies` times into training tokens that pretraining reads steps x tokens_per_step /
    train_tokens times over (a random window reads each token that often, on average). The
    object's own document, read once a pass, is not counted."""
    return forms * copies * steps * tokens_per_step / train_tokens


@dataclass(frozen=True)
class World:
    """The profile's world and what the questions need around it."""
    objects: list[Facts]       # the world, in the order of the rule
    fine_tuning: list[Facts]   # the half fine-tuning asks about
    held_out: list[Facts]      # the half notebook 07 asks about
    outside: list[Facts]       # documented objects pretraining reads that are not in the world


def world_in(documents: list[Document], size: int | None, seed: int, val_fraction: float = 0.0) -> World:
    """The world of `size` objects (None: all) among the documented objects of `documents` that
    pretraining reads (those stage 02 sends to validation, with `val_fraction`, are left out:
    validation measures text pretraining never read), split into halves by `seed`."""
    read = [document for document in documents if not goes_to_validation(document, val_fraction)]
    objects = world_facts(read, size)
    fine_tuning, held_out = world_halves(objects, seed)
    return World(objects, fine_tuning, held_out, ordered_facts(read)[len(objects):])


def world_of(data: DataConfig, seed: int) -> World:
    """The profile's world (`data.world` objects of the documentation the questions are about).
    Stages 02 and 05 both ask here, so they agree on it."""
    return world_in(question_documents(data), data.world, seed, data.val_fraction)


def world_questions(documents: list[Document], seed: int, size: int | None = None,
                    val_fraction: float = 0.0, unknown_share: float = UNKNOWN_SHARE,
                    kind_questions: bool = False) -> dict[str, list[Question]]:
    """The questions of every split about the world of `documents` (documentation.docs_questions)."""
    world = world_in(documents, size, seed, val_fraction)
    return docs_questions(world.fine_tuning, world.held_out, seed, world.outside, unknown_share=unknown_share,
                          kind_questions=kind_questions)


def course_questions(data: DataConfig, seed: int) -> dict[str, list[Question]]:
    """The questions of every split about the profile's world."""
    return world_questions(question_documents(data), seed, data.world, data.val_fraction, data.unknown_share,
                           data.kind_questions)
