"""What the Python documentation says about each of its objects, and the forms the course writes it in.

- Stage 05 asks **questions** about the documented objects, answered by the first sentence of
  their docstrings, and about **made-up** objects, answered "I don't know"; the objects are split
  into train, validation and test, so that notebook 07 asks about objects never asked about in
  training. With the small talk of the course, these are the course's own conversations.
- Stage 02 can write each object's **facts** again in other forms (knowledge augmentation), and
  mix the training conversations into pretraining ("mixed training"): see `fact_documents` and
  `pretraining_conversations`.

Both stages call the same functions on the same documents (`question_documents`), so that they
agree on which objects are held out.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .corpus import PYTHON_DOCS, load_corpus
from .document import Document
from .errors import CourseError
from .profiles import DataConfig
from .seeds import seed_for

SPLITS = ("train", "val", "test")
QUESTION_TEMPLATES = ["What does {name} do?", "Explain {name}.", "What is {name} for?",
                      "Tell me about {name}.", "What is the purpose of {name}?",
                      "Can you describe {name}?"]
UNKNOWN_ANSWER = "I don't know {name}: it is not in the Python documentation I learned from."
# made-up names in training and validation, per documented object. Saying "I don't know
# json.flatten_tree" takes copying a name the model never saw, a skill that needs many examples;
# too many, and the model says "I don't know" about real objects too. Measured with the cpu
# model (stage 05's files remade with each share, then notebook 07 or
# `python -m benchmarks.sft_settings --settings 500:5e-4`): from a 1,800-step pretraining,
# 0.1 gave 2% right "I don't know"s on the test names, 0.3 10%, 1.0 40%, 3.0 60%, while
# documented objects went 21%, 19%, 19%, 12%; from the committed 800-step one, 0.5 gave
# 32% and 20%, 1.0 47% and 17%, and 1.0 answered "What does json.dumps do?" with
# "I don't know": 0.5 keeps the real names answered. (From the 1,500-step pretraining on
# python-docs+packages with docs_copies=6, 0.25 gave 48% and 19%, 0.5 57% and 18%.)
UNKNOWN_SHARE = 0.5
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


@dataclass(frozen=True)
class Question:
    name: str          # the object asked about
    question: str
    answer: str        # the reference answer
    known: bool        # False for made-up objects
    # a second question about the same object and its answer ("And what does it return?")
    follow_up: tuple[str, str] | None = None


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


def follow_up(text: str, summary: str, rng: random.Random) -> tuple[str, str] | None:
    """A second question about the object of `text`, answered by another sentence of its
    docstring: what it returns when a sentence says so, otherwise the next sentence."""
    rest = [sentence for sentence in docstring_sentences(text) if sentence != summary]
    returns = next((sentence for sentence in rest if sentence.startswith("Return")), None)
    if returns and not summary.startswith("Return"):
        return rng.choice(FOLLOW_UP_RETURN), returns
    if rest:
        return rng.choice(FOLLOW_UP_MORE), rest[0]
    return None


def documented_summaries(documents: list[Document]) -> dict[str, str]:
    """Qualified name -> docstring summary, for the objects of the Python documentation."""
    summaries = {}
    for document in documents:
        if document.source == PYTHON_DOCS and not document.name.startswith("topic:"):
            summary = docstring_summary(document.text)
            if summary:
                summaries.setdefault(document.name, summary)
    return summaries


def made_up_names(real_names: set[str], count: int, seed: int) -> list[str]:
    """`count` names of objects that do not exist, in four shapes, a quarter each:

    - a function a real module does not have: ``json.flatten_tree``;
    - a class it does not have: ``json.TreeFlattener``;
    - a method a real class does not have: ``json.JSONDecoder.merge_keys``;
    - a real name one edit away: ``json.dumsp`` (letters swapped, dropped or doubled), which
      a model that answers by resemblance gets wrong.
    """
    rng = random.Random(seed_for(seed, "made-up names"))
    shapes = made_up_shapes(real_names)
    names: set[str] = set()
    for attempt in range(100 * count):   # the shapes take turns; one that runs dry is skipped
        if len(names) == count:
            return sorted(names)
        name = shapes[attempt % len(shapes)](rng)
        if name not in real_names:
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


def split_names(names: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[str]]:
    """A seeded split by object, so that all questions about one object are in one split."""
    shuffled = sorted(names)
    random.Random(seed_for(seed, "question split")).shuffle(shuffled)
    n_test = max(1, round(len(names) * test_fraction))
    n_val = max(1, round(len(names) * val_fraction))
    return {"test": shuffled[:n_test], "val": shuffled[n_test:n_test + n_val],
            "train": shuffled[n_test + n_val:]}


def docs_questions(documents: list[Document], seed: int, questions_per_object: int = 2,
                   unknown_share: float = UNKNOWN_SHARE, val_fraction: float = 0.05,
                   test_fraction: float = 0.05, made_up_in_test: int = 120) -> dict[str, list[Question]]:
    """Questions about documented objects and about made-up ones, split by object.

    `unknown_share` of the documented objects' count in made-up names go to training and
    validation; `made_up_in_test` more to the test split, enough to measure the rate of
    right "I don't know"s to within about +-9 points (+-5 near 90%).
    """
    summaries = documented_summaries(documents)
    if not summaries:
        raise CourseError("The corpus has no documented Python objects to ask about: the offline "
                          "SFT set needs LLM_CORPUS=python-docs.")
    unknown = made_up_names(set(summaries), max(1, int(len(summaries) * unknown_share)) + made_up_in_test, seed)
    rng = random.Random(seed_for(seed, "question templates"))
    questions: dict[str, list[Question]] = {}
    known_split = split_names(list(summaries), val_fraction, test_fraction, seed_for(seed, "documented objects"))
    unknown_split = split_names(unknown, val_fraction, made_up_in_test / len(unknown), seed_for(seed, "made-up objects"))
    texts = {document.name: document.text for document in documents}
    for split in SPLITS:
        questions[split] = [
            Question(name, template.format(name=name), summaries[name], True,
                     # one question per object has a follow-up; the test questions have none
                     follow_up(texts[name], summaries[name], rng) if number == 0 and split != "test" else None)
            for name in known_split[split]
            for number, template in enumerate(rng.sample(QUESTION_TEMPLATES, questions_per_object))]
        questions[split] += [
            Question(name, rng.choice(QUESTION_TEMPLATES).format(name=name),
                     UNKNOWN_ANSWER.format(name=name), False)
            for name in unknown_split[split]]
    return questions


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
    own files). Stages 02 and 05 both ask here, so they agree on the split of the objects."""
    if data.corpus == PYTHON_DOCS:
        return load_corpus(PYTHON_DOCS, data.corpus_max_bytes)
    return load_corpus(PYTHON_DOCS)


# --- for pretraining: questions mixed in, and facts in other forms -----------------------------

def pretraining_conversations(documents: list[Document], share: float, seed: int) -> list[Conversation]:
    """A `share` (0 to 1) of the fine-tuning conversations of the training split, for pretraining
    to read ("mixed training"): questions about training objects and made-up names, and small
    talk. Never a question about an object of the validation or test split."""
    if not 0 <= share <= 1:
        raise CourseError(f"data.mixed_questions={share} is not a share: use a number from 0 to 1.")
    conversations = own_conversations(docs_questions(documents, seed), seed)["train"]
    return random.Random(seed_for(seed, "mixed questions")).sample(conversations, round(share * len(conversations)))


@dataclass(frozen=True)
class Facts:
    """What one object's document says: the object, its module, its heading line (a signature,
    ``class json.JSONDecoder`` or ``Module json``) and the prose sentences of its docstring."""
    name: str
    module: str
    heading: str
    sentences: list[str]    # the summary (the first sentence) first

    @property
    def summary(self) -> str:
        return self.sentences[0]


def facts_of(document: Document, modules: set[str]) -> Facts | None:
    """The facts of a documented object, or None when its docstring has no summary."""
    summary = docstring_summary(document.text)
    if summary is None or document.name.startswith("topic:"):
        return None
    parts = document.name.split(".")
    module = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in modules),
                  parts[0])
    rest = [sentence for sentence in docstring_sentences(document.text) if sentence != summary]
    return Facts(document.name, module, document.text.partition("\n")[0], [summary] + rest)


# Each form writes the facts differently: the full name before or after the summary, a sentence
# naming the module, the sentences in another order, the signature. A form returns None where it
# does not apply (a single sentence cannot be reordered).
def name_first(facts: Facts) -> str:
    return f"{facts.name}: {facts.summary}"


def name_last(facts: Facts) -> str:
    return f"{facts.summary.rstrip('.')}: that is what {facts.name} does."


def module_named(facts: Facts) -> str:
    if facts.name == facts.module:
        return f"{facts.name} is a module of the Python standard library. {facts.summary}"
    return f"{facts.name} belongs to the {facts.module} module. {facts.summary}"


def sentences_reordered(facts: Facts) -> str | None:
    if len(facts.sentences) < 2:
        return None
    return " ".join(facts.sentences[1:]) + f" In short, {facts.name}: {facts.summary}"


def with_signature(facts: Facts) -> str | None:
    if "(" not in facts.heading:
        return None     # a class or a module: its heading has no signature
    return f"{facts.summary} It is called as {facts.heading}."


FACT_FORMS = (name_first, name_last, module_named, sentences_reordered, with_signature)
FACTS_SOURCE = "python-docs facts"


def fact_documents(documents: list[Document], forms: int, seed: int,
                   exclude: set[str] = frozenset()) -> list[Document]:
    """Each documented object's facts written in up to `forms` of `FACT_FORMS` (chosen at random
    per object, seeded), one document each, all shuffled so that two forms of one object are
    seldom in one training window; none for the objects named in `exclude`. Facts only: never a
    question."""
    if forms < 0 or forms > len(FACT_FORMS):
        raise CourseError(f"data.fact_forms={forms}: choose from 0 (none) to {len(FACT_FORMS)}.")
    modules = {document.name for document in documents if document.text.startswith("Module ")}
    rng = random.Random(seed_for(seed, "fact forms"))
    written = []
    for document in documents:
        facts = facts_of(document, modules)
        if facts is None or document.source != PYTHON_DOCS or document.name in exclude:
            continue
        texts = [text for text in (form(facts) for form in FACT_FORMS) if text]
        written += [Document(f"{facts.name}#fact{i}", text, FACTS_SOURCE)
                    for i, text in enumerate(rng.sample(texts, min(forms, len(texts))))]
    rng.shuffle(written)
    return written
