"""What the Python documentation says about each of its objects, and the questions the course asks about it.

- `facts_of` reads an object's facts from its document: its name, module, heading and the prose
  sentences of its docstring, the first of which (the summary) answers a question about it.
- Stage 05 asks **questions** about the objects of the world (world.py): fine-tuning asks about
  one half, notebook 07 about the other, held-out half, in the phrasings fine-tuning taught and
  in phrasings it never used; about **made-up** objects, answered "I don't know"; and about
  real objects outside the world, to see what the model says about them. With the small talk
  of the course, these are the course's own conversations.
- Stage 02 can mix the training conversations into pretraining ("mixed training"): see
  `pretraining_conversations`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .corpus import PYTHON_DOCS, load_corpus
from .document import Document
from .errors import CourseError
from .profiles import UNKNOWN_SHARE, DataConfig
from .seeds import seed_for

SPLITS = ("train", "val", "test")
QUESTION_TEMPLATES = ["What does {name} do?", "Explain {name}.", "What is {name} for?",
                      "Tell me about {name}.", "What is the purpose of {name}?",
                      "Can you describe {name}?"]
# Phrasings a user would type that fine-tuning never uses: notebook 07 asks the held-out objects
# in these too, to see whether the model answers a question or a template.
UNTAUGHT_PHRASINGS = ["what's {name} used for?", "How does {name} work?", "I keep seeing {name} in code. What is it?",
                      "Could you explain what {name} is?", "what is {name}", "Quick question: what does {name} do?",
                      "Give me a one-line summary of {name}.", "{name}?", "Do you know what {name} does?",
                      "What's the point of {name}?"]
UNKNOWN_ANSWER = "I don't know {name}: it is not in the Python documentation I learned from."
# Exact-match facts (data.kind_questions): what kind of object a name is and where it is written.
# A right answer is one sentence, word for word: no judge is needed to score it.
KIND_TEMPLATES = ["What kind of object is {name}?", "Is {name} a function, a class or a method?",
                  "Which module is {name} in?"]
KIND_ANSWER = "A {kind} in the module {module}."
# parts of made-up names: real modules with functions they do not have
MADE_UP_VERBS = ["compress", "flatten", "normalize", "shuffle", "validate", "merge", "render",
                 "encrypt", "summarize", "reverse", "upload", "translate"]
MADE_UP_NOUNS = ["tree", "records", "keys", "blocks", "lines", "bytes", "graph", "table",
                 "payload", "cache", "matrix", "tokens"]
MADE_UP_AGENTS = ["Compressor", "Flattener", "Normalizer", "Shuffler", "Validator", "Merger",
                  "Renderer", "Encryptor", "Summarizer", "Reverser", "Uploader", "Translator"]

# Small talk written for this course: every phrasing on the left gets the answer on the
# right, so that "Hello!" is greeted, not answered with a docstring.
SMALL_TALK = [
    (["Hello!", "Hi", "Hi!", "Hey", "Hello", "Good morning!", "Hi there!", "Hey there", "Greetings!",
      "Good evening", "hello", "Hey!"],
     "Hello! Ask me about a module, class or function of the Python standard library."),
    (["Who are you?", "What are you?", "What is your name?", "Introduce yourself.", "Are you ChatGPT?",
      "Are you a person?"],
     "I am a small language model trained from scratch in this course, on the documentation of "
     "the Python standard library."),
    (["What can you do?", "How can you help me?", "What do you know?", "What can I ask you?", "Help",
      "What are you good at?"],
     "I can tell you what a module, class or function of the Python standard library does. "
     "Try: What does json.dumps do?"),
    (["How were you trained?", "How do you work?", "Where does your knowledge come from?",
      "How did you learn?"],
     "First on the documentation of the Python standard library, to predict the next token; "
     "then on questions and answers about it."),
    (["Thanks!", "Thank you.", "Thanks a lot", "Great, thanks!", "thx", "Thank you very much!"],
     "You're welcome! Ask me about another part of the standard library any time."),
    (["Bye!", "Goodbye.", "See you", "That's all, bye", "Bye"],
     "Goodbye! Happy coding."),
    (["What is the capital of France?", "Write me a poem.", "What's the weather like today?",
      "Who won the World Cup?", "Tell me a joke.", "What should I cook tonight?",
      "Who is the president?", "Translate hello into German."],
     "I don't know: I only learned the documentation of the Python standard library. Ask me "
     "about one of its modules, classes or functions."),
]
COURSE_CONVERSATIONS = [[{"role": "user", "content": phrasing}, {"role": "assistant", "content": answer}]
                        for phrasings, answer in SMALL_TALK for phrasing in phrasings]
SMALL_TALK_COPIES = 3            # a few dozen conversations among thousands: seen three times each
GREETED_SHARE = 0.05             # share of questions about objects that come after a greeting
FOLLOW_UP_MORE = ["Tell me more.", "Can you say more about it?", "What else should I know about it?",
                  "Go on.", "Anything else?"]
FOLLOW_UP_RETURN = ["And what does it return?", "What does it return?", "What is its return value?"]


GROUPS = ("fine-tuning", "held-out", "made-up", "outside")


@dataclass(frozen=True)
class Question:
    name: str          # the object asked about
    question: str
    answer: str        # the reference answer
    known: bool        # False for made-up objects
    # a second question about the same object and its answer ("And what does it return?")
    follow_up: tuple[str, str] | None = None
    # fine-tuning: an object of the world's fine-tuning half; held-out: of the other half;
    # made-up: no such object; outside: a documented object outside the world
    group: str = "fine-tuning"
    taught: bool = True     # asked in one of QUESTION_TEMPLATES (False: UNTAUGHT_PHRASINGS)
    aspect: str = "summary"  # what it asks: "summary" (what the object does) or "kind" (KIND_TEMPLATES)


def docstring_summary(text: str, max_characters: int = 200) -> str | None:
    """The first sentence of a document's docstring (the part after its heading line)."""
    _, _, body = text.partition("\n\n")
    paragraph = " ".join(body.split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.!?])\s", paragraph)[0]
    if len(sentence.split()) < 3 or len(sentence) > max_characters:
        return None   # too short to say anything, or too long to be a summary
    return sentence


def docstring_sentences(text: str, paragraphs: int = 3, max_characters: int = 200) -> list[str]:
    """The sentences of the first paragraphs of a docstring that read as prose (no code)."""
    _, _, body = text.partition("\n\n")
    sentences = []
    for paragraph in body.split("\n\n")[:paragraphs]:
        if ">>>" in paragraph or paragraph.startswith((" ", "\t")):
            break     # examples and code, not sentences
        for sentence in re.split(r"(?<=[.!?])\s", " ".join(paragraph.split())):
            if len(sentence.split()) >= 3 and len(sentence) <= max_characters:
                sentences.append(sentence)
    return sentences


@dataclass(frozen=True)
class Facts:
    """What one object's document says: the object, its module, its heading line (a signature,
    ``class json.JSONDecoder`` or ``Module json``) and the prose sentences of its docstring."""
    name: str
    module: str
    heading: str
    sentences: list[str]    # the summary (the first sentence) first
    kind: str = "function"  # "module", "class", "method" or "function", read from the heading

    @property
    def summary(self) -> str:
        return self.sentences[0]

    @property
    def defined_in(self) -> str:
        """The module the object is written in: its name without the last part (a method's,
        without its class too): json.dumps -> json, json.decoder.JSONDecoder.decode -> json.decoder.
        Unlike `module`, the nearest prefix among the modules whose documents were read (json for
        json.decoder.JSONDecoder when json.decoder's document went to validation), it follows the
        name alone: what a programmer imports from."""
        parts = self.name.split(".")
        return ".".join(parts[:-2] if self.kind == "method" else parts[:-1])


def facts_of(document: Document, modules: set[str], classes: set[str] = frozenset()) -> Facts | None:
    """The facts of a documented object, or None when its docstring has no summary. `modules`
    and `classes`: the names of the documentation's modules and classes."""
    summary = docstring_summary(document.text)
    if summary is None or document.name.startswith("topic:") or document.source != PYTHON_DOCS:
        return None
    parts = document.name.split(".")
    module = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in modules),
                  parts[0])
    rest = [sentence for sentence in docstring_sentences(document.text) if sentence != summary]
    heading = document.text.partition("\n")[0]
    return Facts(document.name, module, heading, [summary] + rest, kind_of(document.name, heading, classes))


def kind_of(name: str, heading: str, classes: set[str]) -> str:
    """What an object is, from its document's heading (``Module json``, ``class json.JSONDecoder``,
    ``json.dumps(obj, ...)``): a module, a class, a method (a call whose parent is a class) or a function."""
    if heading.startswith("Module "):
        return "module"
    if heading.startswith("class "):
        return "class"
    return "method" if name.rpartition(".")[0] in classes else "function"


def follow_up(facts: Facts, rng: random.Random) -> tuple[str, str] | None:
    """A second question about the object, answered by another sentence of its docstring: what
    it returns when a sentence says so, otherwise the next sentence."""
    rest = facts.sentences[1:]
    returns = next((sentence for sentence in rest if sentence.startswith("Return")), None)
    if returns and not facts.summary.startswith("Return"):
        return rng.choice(FOLLOW_UP_RETURN), returns
    if rest:
        return rng.choice(FOLLOW_UP_MORE), rest[0]
    return None


def made_up_names(real_names: set[str], count: int, seed: int, avoid: set[str] = frozenset()) -> list[str]:
    """`count` names of objects that do not exist, shaped from `real_names` in four shapes, a
    quarter each, none of them in `real_names` or `avoid`:

    - a function a real module does not have: ``json.flatten_tree``;
    - a class it does not have: ``json.TreeFlattener``;
    - a method a real class does not have: ``json.JSONDecoder.merge_keys``;
    - a real name one edit away: ``json.dumsp`` (letters swapped, dropped or doubled), which
      a model that answers by resemblance gets wrong.
    """
    rng = random.Random(seed_for(seed, "made-up names"))
    shapes = made_up_shapes(real_names)
    taken = set(real_names) | set(avoid)
    names: set[str] = set()
    for attempt in range(100 * count):   # the shapes take turns; one that runs dry is skipped
        if len(names) == count:
            return sorted(names)
        name = shapes[attempt % len(shapes)](rng)
        if name not in taken:
            names.add(name)
    raise CourseError(f"Could not make {count} made-up names from {len(real_names)} real ones: "
                      f"ask for fewer.")


def made_up_shapes(real_names: set[str]) -> list:
    """The four ways `made_up_names` makes a name, each a function of a random generator."""
    ordered = sorted(real_names)
    modules = sorted({name.split(".")[0] for name in ordered})
    classes = [name for name in ordered if name.rsplit(".", 1)[-1][:1].isupper()] or modules

    def function(rng):
        return f"{rng.choice(modules)}.{rng.choice(MADE_UP_VERBS)}_{rng.choice(MADE_UP_NOUNS)}"

    def class_(rng):
        noun = rng.choice(MADE_UP_NOUNS).rstrip("s").capitalize()
        return f"{rng.choice(modules)}.{noun}{rng.choice(MADE_UP_AGENTS)}"

    def method(rng):
        return f"{rng.choice(classes)}.{rng.choice(MADE_UP_VERBS)}_{rng.choice(MADE_UP_NOUNS)}"

    def one_edit_away(rng):
        prefix, _, last = rng.choice(ordered).rpartition(".")
        return f"{prefix}.{one_edit(last, rng)}" if prefix else one_edit(last, rng)

    return [function, class_, method, one_edit_away]


def one_edit(word: str, rng: random.Random) -> str:
    """`word` with two neighbouring letters swapped, one letter dropped, or one doubled."""
    if len(word) < 3:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 1)    # the first letter stays: the name still looks right
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if edit == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def docs_questions(fine_tuning: list[Facts], held_out: list[Facts], seed: int, outside: list[Facts] = (),
                   questions_per_object: int = len(QUESTION_TEMPLATES), val_share: float = 0.1,
                   made_up_in_test: int = 120, outside_in_test: int = 100,
                   unknown_share: float = UNKNOWN_SHARE, kind_questions: bool = False) -> dict[str, list[Question]]:
    """The questions of each split, about the world's two halves (world.world_halves):

    - train: each object of the fine-tuning half in `questions_per_object` of the taught
      phrasings (the first with a follow-up), and `unknown_share` made-up names a question
      about a real object;
    - val: the same about `val_share` of the fine-tuning half, which training does not ask about;
    - test: each held-out object once in a taught phrasing and once in an untaught one;
      `made_up_in_test` made-up names, enough to measure the rate of right "I don't know"s to
      within about +-9 points; and up to `outside_in_test` documented objects outside the world.

    With `kind_questions`, every object but a module is also asked once what kind of object it
    is (`kind_question`), in train and val about the fine-tuning half, in test about the held-out half.
    """
    if not fine_tuning or not held_out:
        raise CourseError("The world has no objects to ask about: the offline fine-tuning set needs the Python "
                          "documentation (LLM_CORPUS=python-docs) and a world of 2 or more (data.world).")
    rng = random.Random(seed_for(seed, "question templates"))
    validated = max(1, round(len(fine_tuning) * val_share)) if len(fine_tuning) > 1 else 0
    objects = {"train": fine_tuning[validated:], "val": fine_tuning[:validated]}
    world_names = {facts.name for facts in fine_tuning + held_out}
    questions = {split: [Question(facts.name, template.format(name=facts.name), facts.summary, True,
                                  follow_up(facts, rng) if number == 0 else None)
                         for facts in split_objects
                         for number, template in enumerate(rng.sample(QUESTION_TEMPLATES, questions_per_object))]
                 for split, split_objects in objects.items()}
    if kind_questions:    # questions about real objects too: the made-up share counts them
        for split, split_objects in objects.items():
            questions[split] += [kind_question(facts, "fine-tuning", rng) for facts in split_objects if facts.kind != "module"]
    made_up = {split: round(len(questions[split]) * unknown_share) for split in objects}
    names = made_up_names(world_names, sum(made_up.values()) + made_up_in_test, seed,
                          avoid={facts.name for facts in outside})
    rng.shuffle(names)
    for split in objects:
        questions[split] += made_up_questions(names[:made_up[split]], rng)
        names = names[made_up[split]:]
    questions["test"] = [Question(facts.name, rng.choice(phrasings).format(name=facts.name), facts.summary, True,
                                  group="held-out", taught=taught)
                         for facts in held_out
                         for phrasings, taught in ((QUESTION_TEMPLATES, True), (UNTAUGHT_PHRASINGS, False))]
    questions["test"] += made_up_questions(names, rng)
    questions["test"] += [Question(facts.name, rng.choice(QUESTION_TEMPLATES).format(name=facts.name), facts.summary,
                                   True, group="outside")
                          for facts in rng.sample(list(outside), min(outside_in_test, len(outside)))]
    if kind_questions:
        questions["test"] += [kind_question(facts, "held-out", rng) for facts in held_out if facts.kind != "module"]
    return questions


def kind_question(facts: Facts, group: str, rng: random.Random) -> Question:
    """ "What kind of object is json.dumps?" "A function in the module json." """
    return Question(facts.name, rng.choice(KIND_TEMPLATES).format(name=facts.name),
                    KIND_ANSWER.format(kind=facts.kind, module=facts.defined_in), True, group=group, aspect="kind")


def made_up_questions(names: list[str], rng: random.Random) -> list[Question]:
    return [Question(name, rng.choice(QUESTION_TEMPLATES).format(name=name), UNKNOWN_ANSWER.format(name=name),
                     False, group="made-up") for name in names]


@dataclass
class Conversation:
    messages: list[dict]
    source: str


def as_messages(question: Question, greeting: tuple[str, str] | None = None) -> list[dict]:
    """The question (after a greeting exchange, if given), its answer, and its follow-up."""
    messages = [{"role": "user", "content": greeting[0]}, {"role": "assistant", "content": greeting[1]}] \
        if greeting else []
    messages += [{"role": "user", "content": question.question},
                 {"role": "assistant", "content": question.answer}]
    if question.follow_up:
        messages += [{"role": "user", "content": question.follow_up[0]},
                     {"role": "assistant", "content": question.follow_up[1]}]
    return messages


def own_conversations(questions: dict[str, list[Question]], seed: int) -> dict[str, list[Conversation]]:
    """The docs questions of each split, some after a greeting, and the small talk (train)."""
    rng = random.Random(seed_for(seed, "greetings"))
    greetings = [(phrasing, SMALL_TALK[0][1]) for phrasing in SMALL_TALK[0][0]]
    conversations = {
        split: [Conversation(as_messages(q, rng.choice(greetings) if rng.random() < GREETED_SHARE else None),
                             PYTHON_DOCS) for q in questions[split]]
        for split in SPLITS}
    conversations["train"] += [Conversation(messages, "course")
                               for messages in COURSE_CONVERSATIONS * SMALL_TALK_COPIES]
    return conversations




def question_documents(data: DataConfig) -> list[Document]:
    """The documentation the questions are about: the profile's corpus when it is the Python
    documentation (as much of it as the profile reads), all of it otherwise (a hub corpus, your
    own files). Stages 02 and 05 both ask here (world.py), so they agree on the world."""
    if data.corpus == PYTHON_DOCS:
        return load_corpus(PYTHON_DOCS, data.corpus_max_bytes)
    return load_corpus(PYTHON_DOCS)


def pretraining_conversations(questions: dict[str, list[Question]], share: float, seed: int) -> list[Conversation]:
    """A `share` (0 to 1) of the fine-tuning conversations of the training split, for pretraining
    to read ("mixed training"): questions about the fine-tuning half's objects and made-up names,
    and small talk. Never a question about an object of the validation or test split."""
    if not 0 <= share <= 1:
        raise CourseError(f"data.mixed_questions={share} is not a share: use a number from 0 to 1.")
    conversations = own_conversations(questions, seed)["train"]
    return random.Random(seed_for(seed, "mixed questions")).sample(conversations, round(share * len(conversations)))
