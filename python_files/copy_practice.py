"""Copy practice: sentences that name an object that does not exist, then name it again.

Answering "I don't know json.dumsp" about a name never read means copying the name from the
question into the answer. Transformers copy with *induction heads* (Olsson et al., "In-context
Learning and Induction Heads", arXiv 2209.11895): a head that finds where the current token
occurred before and predicts the token that followed it there. The Python documentation seldom
repeats a string its reader has never seen, and the cpu model did not learn to copy from it
(benchmarks/copying.py: a random sequence written twice is predicted no better the second time).

So pretraining may read thousands of these sentences (`DataConfig.copy_practice`): each
writes a made-up name, a few words, and the same name again, and the second copy can only be
predicted by copying the first. The names are built from the words of every documented name, so
no part of them can be guessed, and none of them is a name a question of stages 05-07 asks about.
"""

from __future__ import annotations

import random
import re

from .document import Document
from .documentation import one_edit
from .errors import CourseError
from .seeds import seed_for

IDENTIFIER = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")    # a dotted name (not a page such as topic:...)
COPY_SOURCE = "copy practice"     # the source name of these sentences in stage 02's files
# Each form has a space before both copies of the name: a name at the start of a document is
# tokenized apart from the same name after a space, and the second copy would not repeat the first.
COPY_FORMS = ("Say {name}. Again: {name}.",
              "The name {name}, copied: {name}.",
              "Copy {name}: {name}.")


def name_words(real_names: set[str]) -> list[str]:
    """The words of the last parts of `real_names` (``JSONDecoder.raw_decode`` gives ``raw``,
    ``decode``; ``OrderedDict`` gives ``ordered``, ``dict``), lower case, three letters or more."""
    words = set()
    for name in real_names:
        for word in re.findall(r"[A-Z]?[a-z]+", name.rsplit(".", 1)[-1]):
            if len(word) >= 3:
                words.add(word.lower())
    return sorted(words)


def practice_names(real_names: set[str], count: int, seed: int, avoid: set[str] = frozenset()) -> list[str]:
    """`count` names of no documented object and none in `avoid`: a real module followed by one
    to three random words (as a function, ``json.table_order``) or two (as a class,
    ``json.TableOrder``), or a real name one edit away (``json.dumsp``), a third each. Only the
    dotted names of `real_names` are built from (not pages such as ``topic:string-methods``)."""
    rng = random.Random(seed_for(seed, "copy practice names"))
    ordered = sorted(name for name in real_names if IDENTIFIER.fullmatch(name))
    words = name_words(set(ordered))
    modules = sorted({name.split(".")[0] for name in ordered})
    if count and len(words) < 3:
        raise CourseError(f"The documented names give {len(words)} words, and copy practice builds its names from "
                          f"3 or more: read more documentation, or set data.copy_practice=0.")

    def function():
        return f"{rng.choice(modules)}.{'_'.join(rng.sample(words, rng.randint(1, 3)))}"

    def class_():
        return f"{rng.choice(modules)}.{''.join(word.capitalize() for word in rng.sample(words, 2))}"

    def one_edit_away():
        prefix, _, last = rng.choice(ordered).rpartition(".")
        return f"{prefix}.{one_edit(last, rng)}" if prefix else one_edit(last, rng)

    shapes = (function, class_, one_edit_away)
    taken, names = set(real_names) | set(avoid), []
    for attempt in range(100 * count):
        if len(names) == count:
            break
        name = shapes[attempt % len(shapes)]()
        if name not in taken:
            taken.add(name)
            names.append(name)
    if len(names) < count:
        raise CourseError(f"Could not make {count} copy-practice names from {len(ordered)} real ones: "
                          f"ask for fewer (data.copy_practice).")
    return names


def copy_documents(real_names: set[str], count: int, seed: int, avoid: set[str] = frozenset()) -> list[Document]:
    """`count` copy-practice sentences, one document each, in `COPY_FORMS` taken in turn."""
    return [Document(f"copy practice #{number}", COPY_FORMS[number % len(COPY_FORMS)].format(name=name), COPY_SOURCE)
            for number, name in enumerate(practice_names(real_names, count, seed, avoid))]
