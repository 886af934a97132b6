"""Stage 02: turn a corpus into the token files that pretraining reads.

clean -> split by document -> tokenize in parallel -> write ``train.bin`` / ``val.bin``.

A token file is the token ids of all documents of a split, one after the other, each
document followed by ``<|endoftext|>``, stored as a flat array of uint16 (or uint32 when the
vocabulary has more than 65,536 tokens). `np.memmap` reads windows of it without loading
the whole file, so the same code handles megabytes on a laptop and gigabytes on a GPU node.
``meta.json`` describes the files and is written last: while it is missing the token files
are not to be trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .artifacts import Artifacts, atomic_path, atomic_write_text
from .corpus import Document
from .errors import CourseError
from .tokenizer import END_OF_TEXT, TextTokenizer

SPLIT_SEED = 1234


# --- cleaning and splitting ------------------------------------------------------------------

def clean_text(text: str) -> str:
    """Unicode NFC, Unix newlines, no trailing spaces, at most one blank line in a row.

    Indentation is kept: in documentation and code it carries meaning.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


@dataclass
class Cleaned:
    documents: list[Document]
    empty: int          # documents dropped because nothing was left after cleaning
    duplicates: int     # documents dropped because an identical one came earlier


def clean_documents(documents: list[Document]) -> Cleaned:
    kept, seen, empty, duplicates = [], set(), 0, 0
    for document in documents:
        text = clean_text(document.text)
        digest = hashlib.sha1(text.encode("utf-8")).digest()
        if not text.strip():
            empty += 1
        elif digest in seen:
            duplicates += 1
        else:
            seen.add(digest)
            kept.append(Document(document.name, text, document.source))
    return Cleaned(kept, empty, duplicates)


def split_documents(documents: list[Document], val_fraction: float,
                    seed: int = SPLIT_SEED) -> dict[str, list[Document]]:
    """A seeded random split by whole documents, so no document is half in each split."""
    if len(documents) < 2:
        raise CourseError(f"The corpus has {len(documents)} document(s) after cleaning; at least "
                          f"two are needed to hold one out for validation: add more text.")
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    val_count = min(len(documents) - 1, max(1, round(len(documents) * val_fraction)))
    val = set(order[:val_count])
    return {"train": [d for i, d in enumerate(documents) if i not in val],
            "val": [d for i, d in enumerate(documents) if i in val]}


# --- tokenizing and writing ------------------------------------------------------------------

def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every token id."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def _encode_batch(batch: dict, tokenizer: TextTokenizer) -> dict:
    end_of_text = tokenizer.special_id(END_OF_TEXT)
    ids = [doc_ids + [end_of_text] for doc_ids in tokenizer.encode_batch(batch["text"])]
    return {"ids": ids, "length": [len(x) for x in ids]}


def tokenize_documents(documents: list[Document], tokenizer: TextTokenizer, workers: int):
    """Tokenize with `datasets.map(batched=True, num_proc=workers)`; returns a Dataset.

    Each worker process gets a share of the documents and its own copy of the tokenizer.
    """
    import datasets

    table = datasets.Dataset.from_dict({"text": [d.text for d in documents]})
    batch_size = 256
    processes = min(workers, max(1, len(documents) // batch_size))  # a process per batch at most
    return table.map(_encode_batch, batched=True, batch_size=batch_size,
                     fn_kwargs={"tokenizer": tokenizer}, num_proc=processes if processes > 1 else None,
                     remove_columns=["text"], desc="tokenizing")


def write_token_file(tokenized, path, dtype: np.dtype) -> int:
    """Write all ids of `tokenized` into one flat memmap at `path`; returns the token count."""
    total = int(np.sum(tokenized["length"], dtype=np.int64))
    with atomic_path(path) as temporary:
        tokens = np.memmap(temporary, dtype=dtype, mode="w+", shape=(total,))
        position = 0
        for batch in tokenized.iter(batch_size=1024):
            for ids in batch["ids"]:
                tokens[position:position + len(ids)] = ids
                position += len(ids)
        tokens.flush()
        del tokens  # close the mapping before the rename (required on Windows)
    return total


@dataclass
class PretrainData:
    meta: dict
    lengths: dict[str, np.ndarray]     # tokens per document, per split


def prepare_pretraining_data(documents: list[Document], tokenizer: TextTokenizer,
                             artifacts: Artifacts, corpus: str, expected_vocab_size: int,
                             val_fraction: float, workers: int | None = None) -> PretrainData:
    """Clean, split, tokenize and write the token files and meta.json of stage 02."""
    if tokenizer.vocab_size != expected_vocab_size:
        raise CourseError(f"The tokenizer has {tokenizer.vocab_size} tokens but the profile asks "
                          f"for {expected_vocab_size}: run 01_tokenizer again with this profile.")
    cleaned = clean_documents(documents)
    if not cleaned.documents:
        raise CourseError(f"Nothing is left of the corpus after cleaning ({cleaned.empty} empty "
                          f"and {cleaned.duplicates} duplicate documents): give it some text.")
    splits = split_documents(cleaned.documents, val_fraction)
    dtype = token_dtype(tokenizer.vocab_size)
    artifacts.pretrain_meta.unlink(missing_ok=True)   # the old files are being replaced

    meta = {"dtype": dtype.name, "vocab_size": tokenizer.vocab_size,
            "end_of_text_id": tokenizer.special_id(END_OF_TEXT),
            "tokenizer_sha256": tokenizer.sha256, "corpus": corpus,
            "sources": dict(Counter(d.source for d in cleaned.documents)),
            "dropped": {"empty": cleaned.empty, "duplicates": cleaned.duplicates}, "splits": {}}
    lengths = {}
    for split, split_documents_ in splits.items():
        tokenized = tokenize_documents(split_documents_, tokenizer, workers or os.cpu_count() or 1)
        tokens = write_token_file(tokenized, artifacts.pretrain_tokens(split), dtype)
        lengths[split] = np.asarray(tokenized["length"])
        meta["splits"][split] = {
            "documents": len(split_documents_), "tokens": tokens,
            "bytes": sum(len(d.text.encode("utf-8")) for d in split_documents_)}
    atomic_write_text(artifacts.pretrain_meta, json.dumps(meta, indent=2))
    return PretrainData(meta, lengths)


# --- reading ---------------------------------------------------------------------------------

def read_pretrain_meta(artifacts: Artifacts) -> dict:
    path = artifacts.require(artifacts.pretrain_meta, "02_pretrain_data")
    return json.loads(path.read_text(encoding="utf-8"))


def open_tokens(artifacts: Artifacts, split: str, meta: dict | None = None) -> np.memmap:
    """The token file of `split`, memory-mapped read-only, checked against meta.json."""
    meta = meta or read_pretrain_meta(artifacts)
    path = artifacts.require(artifacts.pretrain_tokens(split), "02_pretrain_data")
    tokens = np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r")
    if len(tokens) != meta["splits"][split]["tokens"]:
        raise CourseError(f"{artifacts.show(path)} holds {len(tokens)} tokens but meta.json says "
                          f"{meta['splits'][split]['tokens']}: run 02_pretrain_data again.")
    return tokens
