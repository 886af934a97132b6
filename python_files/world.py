"""The world the model is asked about: few enough objects to read each fact a hundred times.

A small model stores a fact only after reading it about a hundred times (Allen-Zhu and Li,
Physics of Language Models 3.3, arXiv 2404.05405: about 1 bit per parameter at 100 exposures);
below that, no study finds facts stored reliably. A budget of a few million tokens cannot give
every one of the documentation's ~5,000 objects a hundred readings, so the course asks about a
*world*: the first N documented objects by a fixed, written-down rule,

    the modules of `WORLD_MODULES`, in that order (the standard library's everyday modules,
    running examples first: json, os.path, collections), and within a module its documented
    objects in the order of its source file; then the rest of the documentation, in its order,

and writes each world object's facts again in several forms (`name_first_forms`), every one of
which puts the object's full dotted name before what it does: the question asks name ->
summary, and a model trained on "B is what A does" does not learn "A does B" (the reversal
curse: Berglund et al., arXiv 2309.12288).

`readings` counts how many times pretraining reads each fact: the course's central number.
"""

from __future__ import annotations

import random

from .document import Document
from .documentation import Facts, facts_of
from .errors import CourseError
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


def world_facts(documents: list[Document], size: int) -> list[Facts]:
    """The facts of the world's `size` objects, by the rule of `WORLD_RULE`: the same documents
    give the same world, whatever the seed."""
    modules = {document.name for document in documents if document.text.startswith("Module ")}
    documented = [facts for facts in (facts_of(document, modules) for document in documents) if facts]
    # sorted is stable: within a module, and after the world's modules, the documentation's order stays
    ordered = sorted(documented, key=lambda facts: WORLD_MODULES.index(module_of(facts.name))
                     if module_of(facts.name) else len(WORLD_MODULES))
    if not 0 < size <= len(ordered):
        raise CourseError(f"A world of {size} objects cannot be chosen: the documentation documents "
                          f"{len(ordered)}; choose from 1 to {len(ordered)}.")
    return ordered[:size]


# Each form starts with the object's full dotted name; after it come the summary and the other
# facts (the module, the call, the docstring's other sentences) in an order of the form's own,
# as Physics of Language Models 3.1 permutes a biography's sentences.
FORM_OPENINGS = ("{name}: {summary}",
                 "{name}. {summary}",
                 "{name} - {summary}",
                 "What {name} does: {summary}",
                 "{name}, in short: {summary}",
                 "About {name}: {summary}")


def name_first_forms(facts: Facts, rng: random.Random) -> list[str]:
    """The object's facts written in each of `FORM_OPENINGS`, the sentences after the summary
    shuffled anew for each form."""
    extra = [f"It is part of the {facts.module} module." if facts.name != facts.module else
             "It is a module of the Python standard library."]
    if "(" in facts.heading:
        extra.append(f"It is called as {facts.heading}.")
    extra += facts.sentences[1:]
    forms = []
    for opening in FORM_OPENINGS:
        rng.shuffle(extra)
        forms.append(" ".join([opening.format(name=facts.name, summary=facts.summary), *extra]))
    return forms


def world_documents(facts: list[Facts], seed: int, source: str) -> list[Document]:
    """Every world object's facts in all its forms, one document each, shuffled (two forms of one
    object seldom share a training window). Facts only: never a question."""
    rng = random.Random(seed_for(seed, "world forms"))
    written = [Document(f"{object_facts.name}#form{number}", text, source)
               for object_facts in facts for number, text in enumerate(name_first_forms(object_facts, rng))]
    rng.shuffle(written)
    return written


def readings(forms: int, copies: int, steps: int, tokens_per_step: int, train_tokens: int) -> float:
    """How many times pretraining reads one fact: the `forms` documents that state it, each written
    `copies` times into training tokens that pretraining reads steps x tokens_per_step /
    train_tokens times over (a random window reads each token that often, on average)."""
    return forms * copies * steps * tokens_per_step / train_tokens
