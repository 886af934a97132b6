"""The unit of text every corpus yields, a `Document`, and the split it goes to: stage 02 holds
out a share of the documents for validation, chosen by the hash of their cleaned text."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """One unit of text, with a name that says where it came from.

    For the Python documentation, `name` is the qualified name of the documented object
    (``json.dumps``); stage 05 asks questions about these objects.
    """

    name: str
    text: str
    source: str


# --- cleaning and hashing --------------------------------------------------------------------

def clean_text(text: str) -> str:
    """Unicode NFC, Unix newlines, no trailing spaces, at most one blank line in a row.

    Indentation is kept: in documentation and code it carries meaning.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def text_hash(text: str) -> int:
    """A 64-bit hash of the text: the same text gives the same number on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def is_validation(hash_: int, val_fraction: float) -> bool:
    """Hashes are spread evenly over [0, 2**64): the lowest `val_fraction` of them is held out.

    The hash alone decides, so a document lands in the same split whatever else the corpus
    holds: a bigger budget adds documents to both splits but never moves one across.
    """
    return hash_ < val_fraction * 2**64


def goes_to_validation(document: Document, val_fraction: float) -> bool:
    """Whether stage 02 writes `document` to validation (pretraining never reads it)."""
    return is_validation(text_hash(clean_text(document.text)), val_fraction)
