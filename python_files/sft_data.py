"""Stage 05: the supervised fine-tuning (SFT) set, rendered into token and loss-mask files.

The offline set is made from the embedded corpus: for each documented object, questions in
several phrasings answered by the first sentence of its docstring; questions about objects
that do not exist, answered "I don't know" (a model should admit what it does not know
rather than invent); and a few conversations about the course itself. Objects are split into
train, validation and test, so the test questions are about objects whose questions the model
never saw in fine-tuning: notebook 07 measures on them.

Files, per split: ``<split>.bin`` (token ids), ``<split>_mask.bin`` (1 where the model
learns), ``<split>_starts.bin`` (where each conversation begins), ``<split>_questions.jsonl``
(the questions about objects with their reference answers: notebook 07 scores the test ones,
reinforcement rewards answers to the train ones), and ``meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .artifacts import Artifacts, atomic_path, atomic_write_text, exclusive, remove_stale_temporaries
from .chat import render_conversation
from .corpus import PYTHON_DOCS
from .document import Document
from .errors import CourseError
from .pretrain_data import check_made_with, read_pretrain_meta, token_dtype
from .profiles import MixtureSource
from .sft_sources import GATED_OPT_IN, HUB_SOURCES, hub_conversations, opted_in
from .tokenizer import END_OF_TEXT, TextTokenizer

SPLITS = ("train", "val", "test")
HUB_VAL_EVERY = 20      # every 20th conversation kept from a hub source goes to validation
SPLIT_SEED = 5
QUESTION_TEMPLATES = ["What does {name} do?", "Explain {name}.", "What is {name} for?",
                      "Tell me about {name}.", "What is the purpose of {name}?",
                      "Can you describe {name}?"]
UNKNOWN_ANSWER = "I don't know {name}: it is not in the Python documentation I learned from."
OWN_SOURCE_LICENSES = {PYTHON_DOCS: "PSF License (Python's documentation)", "course": "written for this course"}
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
    rng = random.Random(seed)
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


def split_names(names: list[str], val_fraction: float, test_fraction: float,
                seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """A seeded split by object, so that all questions about one object are in one split."""
    shuffled = sorted(names)
    random.Random(seed).shuffle(shuffled)
    n_test = max(1, round(len(names) * test_fraction))
    n_val = max(1, round(len(names) * val_fraction))
    return {"test": shuffled[:n_test], "val": shuffled[n_test:n_test + n_val],
            "train": shuffled[n_test + n_val:]}


def docs_questions(documents: list[Document], questions_per_object: int = 2,
                   unknown_share: float = UNKNOWN_SHARE, val_fraction: float = 0.05,
                   test_fraction: float = 0.05, made_up_in_test: int = 120,
                   seed: int = SPLIT_SEED) -> dict[str, list[Question]]:
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
    rng = random.Random(seed)
    questions: dict[str, list[Question]] = {}
    known_split = split_names(list(summaries), val_fraction, test_fraction, seed)
    unknown_split = split_names(unknown, val_fraction, made_up_in_test / len(unknown), seed)
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


def own_conversations(questions: dict[str, list[Question]], seed: int = SPLIT_SEED) -> dict[str, list[Conversation]]:
    """The docs questions of each split, some after a greeting, and the small talk (train)."""
    rng = random.Random(seed)
    greetings = [(phrasing, SMALL_TALK[0][1]) for phrasing in SMALL_TALK[0][0]]
    conversations = {
        split: [Conversation(as_messages(q, rng.choice(greetings) if rng.random() < GREETED_SHARE else None),
                             PYTHON_DOCS) for q in questions[split]]
        for split in SPLITS}
    conversations["train"] += [Conversation(messages, "course")
                               for messages in COURSE_CONVERSATIONS * SMALL_TALK_COPIES]
    return conversations


def all_conversations(questions: dict[str, list[Question]], mixture: tuple[MixtureSource, ...] = (),
                      data_files: dict[str, str] | None = None) -> tuple[dict[str, list[Conversation]], dict]:
    """The docs questions of each split, the course conversations (train), and the hub mixture.

    Each hub source gives at most `cap` conversations; duplicates (identical, or identical
    after normalizing case, spaces and punctuation) are dropped across all sources; every 20th
    remaining conversation goes to validation, and training conversations are repeated by
    the source's `weight`. The test split holds only docs questions, the ones notebook 07
    scores. Returns the splits and, per hub source, what happened to its rows.
    `data_files` reads sources from local files instead of the hub (the tests' fixtures).
    """
    conversations = own_conversations(questions)
    seen: set[str] = {conversation_key(c.messages) for split in conversations.values() for c in split}
    report = {}
    for entry in sources_in_use(mixture):
        source = HUB_SOURCES[entry.name]
        read = kept = trained = 0
        for messages in hub_conversations(source, entry.cap, (data_files or {}).get(entry.name)):
            read += 1
            key = conversation_key(messages)
            if key in seen:
                continue
            seen.add(key)
            kept += 1
            if kept % HUB_VAL_EVERY == 0:
                conversations["val"].append(Conversation(messages, entry.name))
            else:
                copies = repeats(entry.weight, trained)
                conversations["train"] += [Conversation(messages, entry.name)] * copies
                trained += 1
        report[entry.name] = {"read": read, "duplicates": read - kept, "weight": entry.weight,
                              "license": source.license}
    return conversations, report


def sources_in_use(mixture: tuple[MixtureSource, ...]) -> tuple[MixtureSource, ...]:
    """The sources of `mixture` that will be read: gated ones only when opted in (see
    `sft_sources.opted_in`)."""
    for entry in mixture:
        if entry.name not in HUB_SOURCES:
            raise CourseError(f"Unknown SFT source {entry.name!r}: choose among {', '.join(HUB_SOURCES)}.")
    return tuple(entry for entry in mixture if opted_in(HUB_SOURCES[entry.name]))


def left_out(mixture: tuple[MixtureSource, ...]) -> str:
    """One line naming the gated sources of `mixture` that are not read, and how to add them."""
    names = [entry.name for entry in mixture if entry not in sources_in_use(mixture)]
    if not names:
        return ""
    return (f"left out, gated (accept the terms on the hub, log in with `hf auth login`, then set "
            f"{GATED_OPT_IN}={','.join(names)}): {', '.join(names)}")


def mixture_plan(mixture: tuple[MixtureSource, ...], own_conversations: int) -> dict[str, dict]:
    """Each hub source's training conversations and share of the training split if it delivers
    its full cap without duplicates, next to `own_conversations` (docs questions and course
    conversations). A run's meta.json records what it actually got."""
    mixture = sources_in_use(mixture)
    train = {entry.name: round((entry.cap - entry.cap // HUB_VAL_EVERY) * entry.weight)
             for entry in mixture}
    total = own_conversations + sum(train.values())
    sources = {entry.name: HUB_SOURCES[entry.name] for entry in mixture}
    return {entry.name: {"dataset": sources[entry.name].data_files or sources[entry.name].path,
                         "cap": entry.cap, "weight": entry.weight,
                         "train_conversations": train[entry.name], "share": train[entry.name] / total,
                         "license": sources[entry.name].license} for entry in mixture}


def conversation_key(messages: list[dict]) -> str:
    """The same key for conversations that differ only in case, spacing or punctuation."""
    text = " ".join(f"{m['role']}: {m['content']}" for m in messages).lower()
    return hashlib.sha1(" ".join(re.findall(r"\w+", text)).encode("utf-8")).hexdigest()


def repeats(weight: float, index: int) -> int:
    """Copies of the `index`-th conversation: the first n conversations get round(n * weight)."""
    return round((index + 1) * weight) - round(index * weight)


# --- writing the files -----------------------------------------------------------------------

def write_split(conversations: list[Conversation], tokenizer: TextTokenizer, max_tokens: int,
                artifacts: Artifacts, split: str) -> dict:
    """Render conversations into one token stream, its loss mask, and conversation starts.

    Conversations follow each other, separated by ``<|endoftext|>`` (not learned). Too long
    ones are cut at a turn boundary by the renderer, or dropped when no assistant turn fits.
    """
    ids: list[int] = []
    mask: list[int] = []
    starts: list[int] = []
    sources: Counter = Counter()
    dropped = truncated = 0
    end_of_text = tokenizer.special_id(END_OF_TEXT)
    for conversation in conversations:
        rendered = render_conversation(conversation.messages, tokenizer, max_tokens - 1)
        if rendered is None:
            dropped += 1
            continue
        full = render_conversation(conversation.messages, tokenizer)
        truncated += len(full.ids) > len(rendered.ids)
        starts.append(len(ids))
        ids += rendered.ids + [end_of_text]
        mask += rendered.mask + [0]
        sources[conversation.source] += 1
    write_array(artifacts.sft_file(split, "tokens"), np.array(ids, dtype=token_dtype(tokenizer.vocab_size)))
    write_array(artifacts.sft_file(split, "mask"), np.array(mask, dtype=np.uint8))
    write_array(artifacts.sft_file(split, "starts"), np.array(starts, dtype=np.int64))
    return {"conversations": len(starts), "tokens": len(ids), "learned_tokens": int(sum(mask)),
            "dropped": dropped, "truncated": truncated, "sources": dict(sources)}


def write_array(path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        array.tofile(temporary)


def prepare_sft_data(conversations: dict[str, list[Conversation]], questions: dict[str, list[Question]],
                     tokenizer: TextTokenizer, artifacts: Artifacts, context_length: int,
                     mixture_report: dict | None = None) -> dict:
    """Write the token, mask and start files of every split, the questions, and meta.json.

    meta.json lists every source of the training split with its share of the conversations
    (and, for hub sources, rows read, duplicates dropped, weight and license).
    """
    if artifacts.pretrain_meta.exists():   # the ids must be those the pretrained model learned
        check_made_with(tokenizer, read_pretrain_meta(artifacts), "pretraining token files in pretrain/",
                        "02_pretrain_data (and 04_pretraining)")
    with exclusive(artifacts.sft_dir, artifacts.show(artifacts.sft_dir)):
        remove_stale_temporaries(artifacts.sft_dir)   # left by a run that was killed
        artifacts.sft_meta.unlink(missing_ok=True)    # the old files are being replaced
        return write_sft_data(conversations, questions, tokenizer, artifacts, context_length,
                              mixture_report or {})


def write_sft_data(conversations: dict[str, list[Conversation]], questions: dict[str, list[Question]],
                   tokenizer: TextTokenizer, artifacts: Artifacts, context_length: int,
                   mixture_report: dict) -> dict:
    meta = {"dtype": token_dtype(tokenizer.vocab_size).name, "tokenizer_sha256": tokenizer.sha256,
            "context_length": context_length, "splits": {}}
    for split, split_conversations in conversations.items():
        meta["splits"][split] = write_split(split_conversations, tokenizer, context_length + 1,
                                            artifacts, split)
    train_sources = meta["splits"]["train"]["sources"]
    total = sum(train_sources.values())
    meta["mixture"] = {name: {"train_conversations": count, "share": count / total,
                              "license": OWN_SOURCE_LICENSES.get(name, ""),
                              **mixture_report.get(name, {})}
                       for name, count in train_sources.items()}
    for split, split_questions in questions.items():
        atomic_write_text(artifacts.sft_questions(split),
                          "".join(json.dumps(q.__dict__) + "\n" for q in split_questions))
    atomic_write_text(artifacts.sft_meta, json.dumps(meta, indent=2))
    return meta


# --- reading ---------------------------------------------------------------------------------

def read_sft_meta(artifacts: Artifacts) -> dict:
    return artifacts.read_json(artifacts.sft_meta, "05_sft_data")


def open_sft_split(artifacts: Artifacts, split: str, meta: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids, loss mask and conversation starts of `split`, memory-mapped and checked against meta.json."""
    numbers = meta["splits"][split]
    tokens = artifacts.open_array(artifacts.sft_file(split, "tokens"), meta["dtype"], numbers["tokens"],
                                  "05_sft_data")
    mask = artifacts.open_array(artifacts.sft_file(split, "mask"), np.uint8, numbers["tokens"], "05_sft_data")
    starts = artifacts.open_array(artifacts.sft_file(split, "starts"), np.int64, numbers["conversations"],
                                  "05_sft_data")
    return tokens, mask, starts


def read_questions(artifacts: Artifacts, split: str) -> list[Question]:
    path = artifacts.require(artifacts.sft_questions(split), "05_sft_data")
    return [question_from_json(line) for line in path.read_text(encoding="utf-8").splitlines()]


def question_from_json(line: str) -> Question:
    fields = json.loads(line)
    follow_up = fields.pop("follow_up")     # JSON has no tuples: the pair comes back as a list
    return Question(**fields, follow_up=tuple(follow_up) if follow_up else None)
