"""The production tokenizer: a byte-level BPE trained with the `tokenizers` library.

It is the same algorithm as `bpe.py`, written in Rust: it trains in seconds on text that
would take the pure-Python trainer minutes, and encodes in parallel. Its special tokens are
reserved from the start, so the chat stage finds them in the vocabulary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from .artifacts import atomic_write_text
from .bpe import GPT4_SPLIT_PATTERN
from .errors import CourseError, library_reason

END_OF_TEXT = "<|endoftext|>"     # separates documents in the pretraining stream
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"   # chat roles (stage 05)
END_OF_TURN = "<|end|>"
SPECIAL_TOKENS = [END_OF_TEXT, SYSTEM, USER, ASSISTANT, END_OF_TURN]


def train_tokenizer(texts: Iterable[str], vocab_size: int,
                    pattern: str = GPT4_SPLIT_PATTERN) -> Tokenizer:
    """Train a byte-level BPE of `vocab_size` tokens (the special tokens included)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # all 256 bytes, seen or not
    texts = list(texts)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if tokenizer.get_vocab_size() < vocab_size:
        size = sum(len(text.encode("utf-8")) for text in texts)
        raise CourseError(f"The {len(texts):,} training texts ({size:,} bytes) only have material for "
                          f"{tokenizer.get_vocab_size()} tokens, fewer than vocab_size={vocab_size}: "
                          f"use more text or a smaller vocabulary.")
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    atomic_write_text(path, tokenizer.to_str())


@dataclass
class TextTokenizer:
    """The production tokenizer as later stages use it.

    `encode` treats its input as plain text: a user who types ``<|end|>`` gets the
    characters ``<``, ``|``, ... and never the control token. Special tokens are only
    ever inserted by id, through `special_id`.
    """

    backend: Tokenizer
    sha256: str

    @classmethod
    def load(cls, path: Path) -> "TextTokenizer":
        shown = f"{path.parent.name}/{path.name}"
        try:
            return cls.from_json(path.read_text(encoding="utf-8"), shown)
        except CourseError:
            raise
        except Exception as error:   # not UTF-8, not JSON, not a tokenizer: the Rust parser's own kinds
            raise CourseError(f"{shown} is damaged or not a tokenizer ({library_reason(error)}): run "
                              f"01_tokenizer again (05_sft_data under the gpt2 profile, which writes "
                              f"GPT-2's).") from None

    @classmethod
    def from_json(cls, text: str, source: str = "the tokenizer JSON") -> "TextTokenizer":
        """The tokenizer saved as `text` (worker processes get it this way: pickling a
        `tokenizers.Tokenizer` loses `encode_special_tokens`)."""
        backend = Tokenizer.from_str(text)
        backend.encode_special_tokens = True  # special-token strings in input stay plain text
        registered = {t.content for t in backend.get_added_tokens_decoder().values() if t.special}
        missing = [name for name in SPECIAL_TOKENS if name not in registered]
        if missing:
            raise CourseError(f"The tokenizer in {source} lacks the special tokens "
                              f"{', '.join(missing)}: train it again with notebook 01.")
        return cls(backend, hashlib.sha256(text.encode("utf-8")).hexdigest())

    def to_json(self) -> str:
        return self.backend.to_str()

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def special_id(self, name: str) -> int:
        return self.backend.token_to_id(name)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special)

    def token_bytes(self) -> list[int]:
        """The length in bytes of the text each token id stands for (0 for the special tokens):
        what bits per byte divides by. In a byte-level vocabulary each character of a token is
        one byte (`pre_tokenizers.ByteLevel.alphabet`), also where a token holds part of a
        character that decodes to nothing printable alone."""
        alphabet = set(pre_tokenizers.ByteLevel.alphabet())
        special = {t.content for t in self.backend.get_added_tokens_decoder().values() if t.special}
        lengths = [0] * self.vocab_size
        for token, token_id in self.backend.get_vocab().items():
            if token in special:
                continue
            lengths[token_id] = (len(token) if set(token) <= alphabet
                                 else len(self.decode([token_id]).encode("utf-8")))
        return lengths

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each token as readable text (partial UTF-8 characters show as U+FFFD)."""
        return [self.decode([token]) for token in ids]
