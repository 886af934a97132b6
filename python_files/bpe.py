"""Byte-level BPE from scratch: pre-split, train by merges, encode, decode, save, load.

The token ids of a byte-level BPE start as the 256 byte values. Training repeatedly finds
the most frequent adjacent pair of ids and gives it a new id (a *merge*). Encoding replays
the merges in the order they were learned. Text is first cut into chunks by a regex
(words, numbers, punctuation, whitespace), and merges never cross a chunk boundary.

`BPETokenizer` is generic over where its merges come from: trained here by `train_bpe`, or
read from a `tokenizers` JSON file by `from_tokenizers_json`, in which case it produces
exactly the ids that `tokenizers` produces.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Collection, Iterable, Literal

import regex

from .errors import CourseError

# The pre-split patterns of GPT-2 and of GPT-4 (cl100k). GPT-4's splits numbers into groups
# of at most three digits and keeps a leading space or newline out of punctuation runs.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}|"""
                      r""" ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""")

Pair = tuple[int, int]


# --- the two operations everything is built from ---------------------------------------------

def pair_counts(ids: list[int], counts: Counter | None = None, weight: int = 1) -> Counter:
    """How often each adjacent pair occurs in `ids` (added `weight` times into `counts`)."""
    counts = Counter() if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] += weight
    return counts


def merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`."""
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def split_chunks(text: str, pattern: str) -> list[str]:
    return regex.findall(pattern, text)


# --- the tokenizer ---------------------------------------------------------------------------

@dataclass
class BPETokenizer:
    """A byte-level BPE: the id of each byte, the merges in rank order, the special tokens."""

    pattern: str
    byte_ids: list[int]                      # byte_ids[b] is the token id of the byte b
    merges: list[tuple[int, int, int]]       # (left id, right id, merged id), first merge first
    special_tokens: dict[str, int] = field(default_factory=dict)

    @cached_property
    def _rank_and_id(self) -> dict[Pair, tuple[int, int]]:
        return {(left, right): (rank, new) for rank, (left, right, new) in enumerate(self.merges)}

    @cached_property
    def vocab(self) -> dict[int, bytes]:
        """Token id -> the bytes it stands for."""
        vocab = {token: bytes([byte]) for byte, token in enumerate(self.byte_ids)}
        for left, right, new in self.merges:
            vocab[new] = vocab[left] + vocab[right]
        vocab.update({token: name.encode("utf-8") for name, token in self.special_tokens.items()})
        return vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @cached_property
    def _chunk_cache(self) -> dict[str, list[int]]:
        return {}

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text` as plain text: special-token strings in it are just characters."""
        ids: list[int] = []
        for chunk in split_chunks(text, self.pattern):
            cached = self._chunk_cache.get(chunk)
            if cached is None:  # natural text repeats its words, so each is merged only once
                cached = self._chunk_cache[chunk] = self._encode_chunk(chunk.encode("utf-8"))
            ids.extend(cached)
        return ids

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        ids = [self.byte_ids[byte] for byte in chunk]
        ranks = self._rank_and_id
        while len(ids) >= 2:
            # the pair that was learned earliest is merged first, exactly as in training
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, (float("inf"),))[0])
            if pair not in ranks:
                break
            ids = merge(ids, pair, ranks[pair][1])
        return ids

    def encode(self, text: str, allowed_special: Literal["all"] | Collection[str] = ()) -> list[int]:
        """Encode `text`; only the special tokens named in `allowed_special` are recognized.

        By default a string such as ``<|endoftext|>`` in user text is encoded as ordinary
        characters: letting users type control tokens would let them forge conversations.
        """
        allowed = self.special_tokens if allowed_special == "all" else \
            {name: self._special_id(name) for name in allowed_special}
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        # longest first: a regex alternation takes the first name that matches, and a special
        # token that starts another one ("<|end|>" and "<|end|>!") must not cut it short
        by_length = sorted(allowed, key=len, reverse=True)
        splitter = "(" + "|".join(regex.escape(name) for name in by_length) + ")"
        for part in regex.split(splitter, text):
            ids.extend([allowed[part]] if part in allowed else self.encode_ordinary(part))
        return ids

    def _special_id(self, name: str) -> int:
        if name not in self.special_tokens:
            raise CourseError(f"{name!r} is not a special token of this tokenizer "
                              f"(it has: {', '.join(self.special_tokens) or 'none'}).")
        return self.special_tokens[name]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; byte sequences cut inside a character show as U+FFFD."""
        return b"".join(self.vocab[token] for token in ids).decode("utf-8", errors="replace")

    def with_merges(self, count: int) -> "BPETokenizer":
        """The tokenizer made of only the first `count` merges: a smaller vocabulary.

        Training is greedy, so the first k merges of a long run are exactly what a run
        stopped after k merges would have learned.
        """
        return BPETokenizer(self.pattern, self.byte_ids, self.merges[:count])

    # --- save / load -------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        from .artifacts import atomic_write_text

        atomic_write_text(Path(path), json.dumps({
            "pattern": self.pattern, "byte_ids": self.byte_ids,
            "merges": self.merges, "special_tokens": self.special_tokens}))

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(spec["pattern"], spec["byte_ids"], [tuple(m) for m in spec["merges"]],
                   spec["special_tokens"])

    @classmethod
    def from_tokenizers_json(cls, path: str | Path) -> "BPETokenizer":
        """Read the byte-level BPE saved by the `tokenizers` library (a `tokenizer.json`).

        `tokenizers` stores each byte as a printable character (GPT-2's `bytes_to_unicode`),
        tokens as strings of those characters, and merges as pairs of token strings.
        """
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"]
        char_of_byte = bytes_to_unicode()
        merges = [pair.split(" ") if isinstance(pair, str) else pair
                  for pair in spec["model"]["merges"]]
        return cls(
            pattern=split_pattern_of(spec["pre_tokenizer"]),
            byte_ids=[vocab[char_of_byte[byte]] for byte in range(256)],
            merges=[(vocab[left], vocab[right], vocab[left + right]) for left, right in merges],
            special_tokens={t["content"]: t["id"] for t in spec["added_tokens"] if t["special"]})


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 bytes to printable characters.

    Printable Latin-1 bytes map to themselves; the others (control bytes, space, ...) are
    shifted to code points from 256 on, so every token can be stored as a visible string.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return mapping


def split_pattern_of(pre_tokenizer: dict) -> str:
    """The pre-split regex of a `tokenizers` pre-tokenizer spec (Split, or ByteLevel's own)."""
    steps = pre_tokenizer.get("pretokenizers", [pre_tokenizer])
    for step in steps:
        if step["type"] == "Split":
            return step["pattern"]["Regex"]
    if any(step["type"] == "ByteLevel" and step.get("use_regex") for step in steps):
        return GPT2_SPLIT_PATTERN
    raise CourseError("This tokenizer.json has no byte-level pre-split regex; "
                      "train it with the course's tokenizer module.")


# --- training --------------------------------------------------------------------------------

def chunk_counts(texts: Iterable[str], pattern: str) -> Counter:
    """How often each pre-split chunk occurs: training works on unique chunks, not on text."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(split_chunks(text, pattern))
    return counts


def train_bpe(texts: Iterable[str], vocab_size: int, pattern: str = GPT4_SPLIT_PATTERN,
              special_tokens: Iterable[str] = (), progress: bool = False) -> BPETokenizer:
    """Learn `vocab_size - 256` merges from `texts`; special tokens get the ids after them.

    Fast version: every unique chunk is stored once with its count, pair counts are kept
    up to date incrementally (only the chunks that contain the merged pair change), and a
    heap finds the most frequent pair. Ties go to the smallest pair, as in `train_bpe_reference`.
    """
    words, weights = _unique_chunks(texts, pattern)
    counts: Counter = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)   # pair -> chunks that contain it
    for index, (word, weight) in enumerate(zip(words, weights)):
        pair_counts(word, counts, weight)
        for pair in zip(word, word[1:]):
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int, int]] = []
    bar = _progress_bar(vocab_size - 256, progress)
    while len(merges) < vocab_size - 256 and heap:
        negative_count, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -negative_count:
            continue  # a stale heap entry: this pair's count changed since it was pushed
        new_id = 256 + len(merges)
        merges.append((*pair, new_id))
        changed: set[Pair] = set()
        for index in where.pop(pair):
            changed |= _replace_in_chunk(words, weights[index], index, pair, new_id, counts, where)
        del counts[pair]
        for other in changed - {pair}:
            if counts[other] > 0:
                heapq.heappush(heap, (-counts[other], other))
        bar.update()
    bar.close()
    return _with_special_tokens(BPETokenizer(pattern, list(range(256)), merges), special_tokens)


def _unique_chunks(texts: Iterable[str], pattern: str) -> tuple[list[list[int]], list[int]]:
    counts = chunk_counts(texts, pattern)
    return [list(chunk.encode("utf-8")) for chunk in counts], list(counts.values())


def _replace_in_chunk(words, weight, index, pair, new_id, counts, where) -> set[Pair]:
    """Merge `pair` inside one chunk and update the pair counts; returns the pairs touched."""
    old = words[index]
    new = merge(old, pair, new_id)
    old_pairs, new_pairs = list(zip(old, old[1:])), list(zip(new, new[1:]))
    for p in old_pairs:
        counts[p] -= weight
    for p in new_pairs:
        counts[p] += weight
        where[p].add(index)
    words[index] = new
    return set(old_pairs) | set(new_pairs)


def train_bpe_reference(texts: Iterable[str], vocab_size: int,
                        pattern: str = GPT4_SPLIT_PATTERN) -> BPETokenizer:
    """The slow, obvious trainer: recount every pair of every chunk before each merge.

    Kept as the specification that `train_bpe` must agree with exactly.
    """
    words = [list(chunk.encode("utf-8")) for text in texts for chunk in split_chunks(text, pattern)]
    merges = []
    for new_id in range(256, vocab_size):
        counts: Counter = Counter()
        for word in words:
            pair_counts(word, counts)
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))  # ties -> smallest pair
        merges.append((*best, new_id))
        words = [merge(word, best, new_id) for word in words]
    return BPETokenizer(pattern, list(range(256)), merges)


def _with_special_tokens(tokenizer: BPETokenizer, names: Iterable[str]) -> BPETokenizer:
    first_free = 256 + len(tokenizer.merges)
    tokenizer.special_tokens = {name: first_free + i for i, name in enumerate(names)}
    return tokenizer


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="merges", unit="merge", disable=not enabled)
