"""Stage 02: turn a corpus into the token files that pretraining reads.

documents (a stream) -> worker processes clean, hash and tokenize batches of them -> this
process drops duplicates, picks each document's split by its hash, and appends its ids to
``train.bin`` or ``val.bin``.

A token file is the token ids of all documents of a split, one after the other, each
document followed by ``<|endoftext|>``, stored as a flat array of uint16 (or uint32 when the
vocabulary has more than 65,536 tokens). `np.memmap` reads windows of it without loading
the whole file, so the same code handles megabytes on a laptop and gigabytes on a GPU node.

The corpus is read as a stream and each batch is written as soon as it is tokenized, so
memory stays flat whatever the corpus size; only the set of hashes that finds duplicates
grows, by about 100 bytes a document. ``meta.json`` describes the files and is written last:
while it is missing the token files are not to be trusted.
"""

from __future__ import annotations

import array
import contextlib
import itertools
import json
import multiprocessing
import os
import threading
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from .artifacts import Artifacts, atomic_path, atomic_write_text, exclusive, remove_stale_temporaries
from .chat_format import render_conversation
from .copy_practice import COPY_SOURCE, copy_documents
from .corpus import PACKAGE_DOCS, PYTHON_AND_PACKAGE_DOCS, PYTHON_DOCS, python_docs, stream_corpus
from .document import Document, clean_text, is_validation, text_hash
from .documentation import pretraining_conversations, question_documents
from .errors import CourseError
from .profiles import DataConfig
from .tokenizer import END_OF_TEXT, TextTokenizer
from .world import WORLD_SOURCE, course_questions, readings, world_documents, world_of

BATCH_CHARACTERS = 1_000_000    # text sent to a worker at a time
BATCHES_PER_WORKER = 2          # in flight: one being encoded, one waiting
QUESTIONS_SOURCE = "fine-tuning conversations"
# Extra reading that never goes to validation: with `python-docs+packages`, validation holds
# the same Python documentation as with `python-docs`, so the two runs compare on one figure;
# the facts written again and the conversations are what validation would measure otherwise.
TRAIN_ONLY_SOURCES = {PACKAGE_DOCS, WORLD_SOURCE, QUESTIONS_SOURCE, COPY_SOURCE}


def pretraining_documents(data: DataConfig, artifacts: Artifacts, seed: int) -> tuple[Iterator[Document], dict[str, int]]:
    """The profile's corpus as a stream (read once, as it comes), then the world's facts in their
    name-first forms (world.py), and the `train_copies` to write them with: each form
    `data.world_copies` times, each mixed-in conversation (`mixed_conversations`)
    `data.mixed_copies` times, and with `data.docs_copies` the Python documentation's training
    documents that many times. A corpus without the documentation, such as FineWeb-Edu, would
    leave the model unread on what the questions of notebooks 05-07 are about, so it comes first
    there; `python-docs+packages` holds it already, and the copies weigh it against the
    packages'. `seed` is the run's: it shuffles the forms' sentences."""
    documents = stream_corpus(data.corpus, data.corpus_max_bytes, cache_folder=artifacts.corpus_cache(data.corpus))
    copies = {}
    if data.docs_copies:
        if data.corpus not in (PYTHON_DOCS, PYTHON_AND_PACKAGE_DOCS):
            documents = itertools.chain(python_docs(), documents)
        copies[PYTHON_DOCS] = data.docs_copies
    if data.world_copies:
        documents = itertools.chain(documents, world_documents(world_of(data, seed).objects, seed))
        copies[WORLD_SOURCE] = data.world_copies
    if data.mixed_questions:    # the conversations themselves come from mixed_conversations
        copies[QUESTIONS_SOURCE] = data.mixed_copies
    if data.copy_practice:
        documents = itertools.chain(documents, copy_practice_documents(data, seed))
    return documents, copies


def copy_practice_documents(data: DataConfig, seed: int) -> list[Document]:
    """`data.copy_practice` sentences that repeat a made-up name (copy_practice.py), none of them
    a documented name or a name any question of stages 05-07 asks about."""
    documented = {document.name for document in question_documents(data)}
    asked = {question.name for questions in course_questions(data, seed).values() for question in questions}
    return copy_documents(documented, data.copy_practice, seed, avoid=asked)


def mixed_conversations(data: DataConfig, seed: int) -> list[list[dict]]:
    """The fine-tuning conversations pretraining reads (`data.mixed_questions` of the training
    split's, the split the run's `seed` draws: stage 05 must draw the same, see
    pretrain_data.check_same_seed, which stages 04 and 05 apply), as lists of messages."""
    if not data.mixed_questions:
        return []
    return [c.messages for c in pretraining_conversations(course_questions(data, seed), data.mixed_questions, seed)]


def world_readings(meta: dict, config, context_length: int, steps: int | None = None) -> float:
    """How many times pretraining with `config` reads each world fact in the files `meta`
    describes (after `steps` steps; all of them when None): see world.readings."""
    if WORLD_SOURCE not in meta["sources"]:
        return 0.0
    return readings(meta["train_copies"][WORLD_SOURCE], config.max_steps if steps is None else steps,
                    config.batch_size * config.grad_accum_steps * context_length, meta["splits"]["train"]["tokens"])


# --- the workers: clean, hash, tokenize ------------------------------------------------------

def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every token id."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


@dataclass
class EncodedBatch:
    """A batch of documents after cleaning and tokenizing; document i's ids are
    ``ids[offsets[i]:offsets[i + 1]]``, ending with <|endoftext|> (none when it was empty)."""
    sources: list[str]
    hashes: list[int]       # of the cleaned text
    text_bytes: list[int]   # of the cleaned text
    ids: np.ndarray
    offsets: np.ndarray


_worker_tokenizer: TextTokenizer | None = None   # each worker process loads its own


def start_worker(tokenizer_json: str) -> None:
    global _worker_tokenizer
    exit_with_parent()
    # one thread per process: the processes are the parallelism, more threads would compete
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker_tokenizer = TextTokenizer.from_json(tokenizer_json)


def exit_with_parent() -> None:
    """End this worker as soon as the process that started it ends, even when it was killed
    (SIGKILL gives it no chance to stop its workers, which would otherwise wait forever)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True).start()


def encode_documents(documents: list[Document], dtype_name: str) -> EncodedBatch:
    """Runs in a worker process: everything about a batch that takes time."""
    texts = [clean_text(document.text) for document in documents]
    end_of_text = [_worker_tokenizer.special_id(END_OF_TEXT)]
    ids: list[int] = []
    offsets = [0]
    for text, text_ids in zip(texts, _worker_tokenizer.encode_batch(texts)):
        if text.strip():
            ids += text_ids + end_of_text
        offsets.append(len(ids))
    return EncodedBatch([document.source for document in documents],
                        [text_hash(text) for text in texts],
                        [len(text.encode("utf-8")) for text in texts],
                        np.array(ids, dtype=dtype_name), np.array(offsets, dtype=np.int64))


def batches(documents: Iterable[Document],
            batch_characters: int = BATCH_CHARACTERS) -> Iterator[list[Document]]:
    batch, size = [], 0
    for document in documents:
        batch.append(document)
        size += len(document.text)
        if size >= batch_characters:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def encoded_batches(documents: Iterable[Document], tokenizer: TextTokenizer, dtype: np.dtype,
                    workers: int, batch_characters: int = BATCH_CHARACTERS) -> Iterator[EncodedBatch]:
    """The documents encoded by `workers` processes, a batch at a time, in order.

    Only a few batches per worker are sent ahead (`Executor.map` would read the whole stream
    at once). Workers start with "spawn", the same on Linux, macOS and Windows, and safe in a
    process that already runs threads (a notebook kernel, the tokenizer's own pool).
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker,
                             initargs=(tokenizer.to_json(),)) as pool:
        in_flight: deque = deque()
        try:
            for batch in batches(documents, batch_characters):
                in_flight.append(pool.submit(encode_documents, batch, dtype.name))
                if len(in_flight) >= BATCHES_PER_WORKER * workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        except BrokenProcessPool:
            raise CourseError(
                "A tokenizing worker process died. From a script, start stage 02 under "
                "`if __name__ == \"__main__\":` (every worker imports the script); otherwise "
                "memory may have run out: set data.tokenize_workers lower (LLM_SETTINGS).") from None


# --- this process: drop duplicates, pick the split, write ------------------------------------

@dataclass
class TokenFileWriter:
    """Appends documents to one split's token file, and counts what it wrote."""
    file: BinaryIO
    tokens: int = 0
    bytes: int = 0
    lengths: array.array = field(default_factory=lambda: array.array("q"))  # tokens per document

    def append(self, ids: np.ndarray, text_bytes: int) -> None:
        self.file.write(ids.tobytes())
        self.tokens += len(ids)
        self.bytes += text_bytes
        self.lengths.append(len(ids))


@contextlib.contextmanager
def new_token_files(artifacts: Artifacts) -> Iterator[dict[str, TokenFileWriter]]:
    """Writers of train.bin and val.bin under temporary names. Only when the block completes
    do they replace the old files (whose meta.json is deleted first); an interrupted or
    failed run leaves the previous files and their meta.json as they were."""
    with atomic_path(artifacts.pretrain_tokens("train")) as train_path, \
            atomic_path(artifacts.pretrain_tokens("val")) as val_path:
        with open(train_path, "wb") as train_file, open(val_path, "wb") as val_file:
            yield {"train": TokenFileWriter(train_file), "val": TokenFileWriter(val_file)}
        artifacts.pretrain_meta.unlink(missing_ok=True)


@dataclass
class DocumentRouter:
    """Sends each new document to its split's writer, and counts what it dropped.

    A corpus of a few documents may have none in the held-out share; so the train document
    nearest to it is held back until the end, and goes to validation if nothing else did.
    Documents of `TRAIN_ONLY_SOURCES` always go to training. A training document of a source
    in `train_copies` is written that many times: a deliberate repeat, unlike a duplicate. The
    repeats are written at the end, in rounds of all such documents, so that two copies of one
    document are a whole round apart, never in the same training window (where the second could
    be predicted by copying the first).
    """
    writers: dict[str, TokenFileWriter]
    val_fraction: float
    train_copies: dict[str, int] = field(default_factory=dict)
    empty: int = 0          # documents with nothing left after cleaning
    duplicates: int = 0     # documents identical to an earlier one after cleaning
    copies_written: int = 0     # training documents written again, as train_copies asks
    repeats_start: int = 0      # the token of train.bin where the repeats begin (set by write_repeats)
    sources: Counter = field(default_factory=Counter)     # documents kept, per source
    train_tokens: Counter = field(default_factory=Counter)    # tokens written to train.bin, per source
    seen: set = field(default_factory=set)
    held_back: tuple | None = None      # (hash, ids, text_bytes, source) of a train document
    to_repeat: list = field(default_factory=list)    # (ids, text_bytes, source) written again at the end

    def add(self, batch: EncodedBatch) -> None:
        for index, hash_ in enumerate(batch.hashes):
            ids = batch.ids[batch.offsets[index]:batch.offsets[index + 1]]
            if len(ids) == 0:
                self.empty += 1
            elif hash_ in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(hash_)
                self.sources[batch.sources[index]] += 1
                self.route(hash_, ids, batch.text_bytes[index], batch.sources[index])

    def add_conversation(self, ids: np.ndarray, text_bytes: int) -> None:
        """A fine-tuning conversation (mixed training): to training, as it is."""
        self.sources[QUESTIONS_SOURCE] += 1
        self.write_train(ids, text_bytes, QUESTIONS_SOURCE)

    def route(self, hash_: int, ids: np.ndarray, text_bytes: int, source: str) -> None:
        if source in TRAIN_ONLY_SOURCES:
            self.write_train(ids, text_bytes, source)
        elif is_validation(hash_, self.val_fraction):
            self.writers["val"].append(ids, text_bytes)
        elif self.held_back is None or hash_ < self.held_back[0]:
            if self.held_back is not None:
                self.write_train(*self.held_back[1:])
            self.held_back = (hash_, ids.copy(), text_bytes, source)
        else:
            self.write_train(ids, text_bytes, source)

    def write_train(self, ids: np.ndarray, text_bytes: int, source: str) -> None:
        self.writers["train"].append(ids, text_bytes)
        self.train_tokens[source] += len(ids)
        if self.train_copies.get(source, 1) > 1:
            self.to_repeat.append((ids.copy(), text_bytes, source))

    def write_repeats(self) -> None:
        """Round k writes again every document that asks for more than k copies."""
        self.repeats_start = self.writers["train"].tokens
        for round_ in range(1, max(self.train_copies.values(), default=1)):
            for ids, text_bytes, source in self.to_repeat:
                if self.train_copies[source] > round_:
                    self.writers["train"].append(ids, text_bytes)
                    self.train_tokens[source] += len(ids)
                    self.copies_written += 1

    def finish(self) -> None:
        """Write the held-back document, then check that both splits have documents."""
        if self.held_back is not None:
            if self.writers["val"].lengths:
                self.write_train(*self.held_back[1:])
            else:
                self.writers["val"].append(*self.held_back[1:3])
        self.write_repeats()
        if not self.sources:
            raise CourseError(f"Nothing is left of the corpus after cleaning ({self.empty} empty "
                              f"and {self.duplicates} duplicate documents): give it some text.")
        if not all(writer.lengths for writer in self.writers.values()):
            raise CourseError(f"The corpus has {sum(self.sources.values())} document(s) after "
                              f"cleaning; at least two are needed to hold one out for "
                              f"validation: add more text.")


@dataclass
class PretrainData:
    meta: dict
    lengths: dict[str, np.ndarray]     # tokens per document, per split


def prepare_pretraining_data(documents: Iterable[Document], tokenizer: TextTokenizer,
                             artifacts: Artifacts, corpus: str, expected_vocab_size: int,
                             val_fraction: float, workers: int | None = None,
                             train_copies: dict[str, int] | None = None,
                             conversations: list[list[dict]] = (), seed: int | None = None) -> PretrainData:
    """Clean, split, tokenize and write the token files and meta.json of stage 02.

    `documents` may be a stream (see corpus.stream_corpus): it is read once, as it comes.
    `train_copies` names sources whose training documents are written several times (the
    Python documentation mixed into a hub corpus: see DataConfig.docs_copies).
    `conversations` (lists of messages) are written to training in the chat format, special
    tokens and all (mixed training: see DataConfig.mixed_questions). `seed` is the run's, which
    drew the documents' facts and split the conversations' questions: it is recorded, and the
    stages that read these files refuse another (see `check_same_seed`).
    """
    if any(copies < 1 for copies in (train_copies or {}).values()):
        raise CourseError(f"train_copies={train_copies} asks for fewer than one copy: use 1 or more.")
    if tokenizer.vocab_size != expected_vocab_size:
        raise CourseError(f"The tokenizer has {tokenizer.vocab_size} tokens but the profile asks "
                          f"for {expected_vocab_size}: run 01_tokenizer again with this profile.")
    dtype = token_dtype(tokenizer.vocab_size)
    with exclusive(artifacts.pretrain_dir, artifacts.show(artifacts.pretrain_dir)):
        remove_stale_temporaries(artifacts.pretrain_dir)   # left by a run that was killed
        return write_pretraining_data(documents, tokenizer, artifacts, corpus, val_fraction,
                                      dtype, workers, train_copies or {}, conversations, seed)


def write_pretraining_data(documents: Iterable[Document], tokenizer: TextTokenizer, artifacts: Artifacts,
                           corpus: str, val_fraction: float, dtype: np.dtype,
                           workers: int | None, train_copies: dict[str, int],
                           conversations: list[list[dict]] = (), seed: int | None = None) -> PretrainData:
    from tqdm.auto import tqdm

    with new_token_files(artifacts) as writers, \
            tqdm(desc="tokenizing", unit="tok", unit_scale=True) as progress:
        router = DocumentRouter(writers, val_fraction, train_copies)
        for batch in encoded_batches(documents, tokenizer, dtype, workers or os.cpu_count() or 1):
            router.add(batch)
            progress.update(len(batch.ids))
        end_of_text = tokenizer.special_id(END_OF_TEXT)
        for messages in conversations:
            ids = render_conversation(messages, tokenizer).ids + [end_of_text]
            router.add_conversation(np.array(ids, dtype=dtype), sum(len(m["content"].encode("utf-8")) for m in messages))
            progress.update(len(ids))
        router.finish()

    meta = {"dtype": dtype.name, "vocab_size": tokenizer.vocab_size,
            "end_of_text_id": tokenizer.special_id(END_OF_TEXT),
            "tokenizer_sha256": tokenizer.sha256, "corpus": corpus,
            "val_fraction": val_fraction, "sources": dict(router.sources),
            "dropped": {"empty": router.empty, "duplicates": router.duplicates},
            "train_copies": train_copies, "copies_written": router.copies_written,
            "repeats_start_token": router.repeats_start,
            **({"seed": seed} if seed is not None else {}),
            "train_tokens_by_source": dict(router.train_tokens),
            "splits": {split: {"documents": len(writer.lengths), "tokens": writer.tokens,
                               "bytes": writer.bytes} for split, writer in writers.items()}}
    atomic_write_text(artifacts.pretrain_meta, json.dumps(meta, indent=2))
    lengths = {split: np.asarray(writer.lengths) for split, writer in writers.items()}
    return PretrainData(meta, lengths)


# --- reading ---------------------------------------------------------------------------------

def read_pretrain_meta(artifacts: Artifacts) -> dict:
    meta = artifacts.read_json(artifacts.pretrain_meta, "02_pretrain_data")
    if "train_tokens_by_source" not in meta:
        raise CourseError(f"{artifacts.show(artifacts.pretrain_meta)} was written by an older version of "
                          f"the course (it does not say what the training tokens are made of): run "
                          f"02_pretrain_data again.")
    return meta


def training_mixture(meta: dict) -> list[str]:
    """What pretraining reads, a line per source: its share of the training tokens."""
    total = meta["splits"]["train"]["tokens"]
    lines = []
    for source, tokens in meta["train_tokens_by_source"].items():
        copies = meta["train_copies"].get(source, 1)
        lines.append(f"{tokens / total:.1%} {source}" + (f" (each document {copies} times)" if copies > 1 else ""))
    return lines


def open_tokens(artifacts: Artifacts, split: str, meta: dict | None = None) -> np.ndarray:
    """The token file of `split`, memory-mapped read-only, checked against meta.json."""
    meta = meta or read_pretrain_meta(artifacts)
    return artifacts.open_array(artifacts.pretrain_tokens(split), meta["dtype"],
                                meta["splits"][split]["tokens"], "02_pretrain_data")


def check_same_seed(meta: dict, seed: int, files: str, notebook: str) -> None:
    """Stop when the files that `meta` describes were drawn with another seed than the run's:
    one seed decides a whole run, its data included."""
    if meta.get("seed", seed) != seed:
        raise CourseError(f"The {files} were made with seed={meta['seed']}, and this run's seed is {seed}: set "
                          f"seed={meta['seed']} (LLM_SETTINGS), or run {notebook} again with this seed.")


def check_made_with(tokenizer: TextTokenizer, meta: dict, files: str, notebook: str) -> None:
    """Stop when the files that `meta` describes hold the ids of another tokenizer."""
    if meta.get("tokenizer_sha256") != tokenizer.sha256:
        raise CourseError(f"The {files} were made with another tokenizer than the one in tokenizer/ "
                          f"(notebook 01 was run again since): run {notebook} again.")
