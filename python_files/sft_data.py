"""Stage 05: the supervised fine-tuning (SFT) set, rendered into token and loss-mask files.

The offline set is the course's own conversations (see `documentation`): questions about the
documented objects answered by the first sentence of their docstrings, questions about made-up
objects answered "I don't know", and small talk; the objects are split into train, validation
and test, so the test questions are about objects whose questions the model never saw in
fine-tuning: notebook 07 measures on them. Hub instruction sets can be mixed in.

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
from dataclasses import fields

import numpy as np

from .artifacts import Artifacts, atomic_path, atomic_write_text, exclusive, remove_stale_temporaries
from .chat_format import render_conversation
from .corpus import PYTHON_DOCS
from .documentation import Conversation, Question, own_conversations
from .errors import CourseError
from .loader import RandomWindows, ValidationWindows
from .pretrain_data import QUESTIONS_SOURCE, check_made_with, check_same_seed, read_pretrain_meta, token_dtype
from .profiles import MixtureSource
from .seeds import seed_for
from .sft_sources import GATED_OPT_IN, HUB_SOURCES, hub_conversations, opted_in
from .tokenizer import END_OF_TEXT, TextTokenizer

HUB_VAL_EVERY = 20      # every 20th conversation kept from a hub source goes to validation
OWN_SOURCE_LICENSES = {PYTHON_DOCS: "PSF License (Python's documentation)", "course": "written for this course"}


def all_conversations(questions: dict[str, list[Question]], seed: int, mixture: tuple[MixtureSource, ...] = (),
                      data_files: dict[str, str] | None = None) -> tuple[dict[str, list[Conversation]], dict]:
    """The docs questions of each split, the course conversations (train), and the hub mixture,
    each split in an order shuffled by `seed`.

    Each hub source gives at most `cap` conversations; duplicates (identical, or identical
    after normalizing case, spaces and punctuation) are dropped across all sources; every 20th
    remaining conversation goes to validation, and training conversations are repeated by
    the source's `weight`. The test split holds only docs questions, the ones notebook 07
    scores. Returns the splits and, per hub source, what happened to its rows.
    `data_files` reads sources from local files instead of the hub (the tests' fixtures).
    """
    conversations = own_conversations(questions, seed)
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
    for split, split_conversations in conversations.items():
        # the questions come object by object: unshuffled, a packed window would ask about one
        # object six times in a row, and hold the same answer six times
        random.Random(seed_for(seed, f"conversation order {split}")).shuffle(split_conversations)
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
                     mixture_report: dict | None = None, seed: int | None = None) -> dict:
    """Write the token, mask and start files of every split, the questions, and meta.json.

    meta.json lists every source of the training split with its share of the conversations
    (and, for hub sources, rows read, duplicates dropped, weight and license). `seed` is the one
    that split the questions (docs_questions): where pretraining read some of them (mixed
    training), it must be the seed that split those, or held-out questions would have been read.
    """
    if artifacts.pretrain_meta.exists():   # the ids must be those the pretrained model learned
        pretrain_meta = read_pretrain_meta(artifacts)
        check_made_with(tokenizer, pretrain_meta, "pretraining token files in pretrain/",
                        "02_pretrain_data (and 04_pretraining)")
        if QUESTIONS_SOURCE in pretrain_meta["sources"]:   # pretraining read questions of this split
            check_same_seed(pretrain_meta, seed, "pretraining token files in pretrain/, which hold fine-tuning "
                            "questions,", "02_pretrain_data (and 04_pretraining)")
    with exclusive(artifacts.sft_dir, artifacts.show(artifacts.sft_dir)):
        remove_stale_temporaries(artifacts.sft_dir)   # left by a run that was killed
        artifacts.sft_meta.unlink(missing_ok=True)    # the old files are being replaced
        return write_sft_data(conversations, questions, tokenizer, artifacts, context_length,
                              mixture_report or {}, seed)


def write_sft_data(conversations: dict[str, list[Conversation]], questions: dict[str, list[Question]],
                   tokenizer: TextTokenizer, artifacts: Artifacts, context_length: int,
                   mixture_report: dict, seed: int | None = None) -> dict:
    meta = {"dtype": token_dtype(tokenizer.vocab_size).name, "tokenizer_sha256": tokenizer.sha256,
            "context_length": context_length, **({"seed": seed} if seed is not None else {}), "splits": {}}
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


# --- batches of conversations, for the stages that train on them (06 and 06b) ------------------

def conversation_batches(artifacts: Artifacts, meta: dict, context_length: int, batch_size: int, device,
                         seed: int, rank: int = 0, world_size: int = 1) -> RandomWindows:
    """Random windows of the training conversations, each starting at a conversation's start and
    carrying its loss mask, in the order `seed` draws them."""
    tokens, mask, starts = open_sft_split(artifacts, "train", meta)
    return RandomWindows(tokens, context_length, batch_size, device, seed=seed, loss_mask=mask,
                         starts=starts, rank=rank, world_size=world_size)


def conversation_validation(artifacts: Artifacts, meta: dict, context_length: int, batch_size: int,
                            batches: int, device, rank: int = 0, world_size: int = 1) -> ValidationWindows:
    """The validation conversations every evaluation reads: windows at conversation starts, spread
    evenly over the split (see loader.ValidationWindows)."""
    tokens, mask, starts = open_sft_split(artifacts, "val", meta)
    return ValidationWindows(tokens, context_length, batch_size, batches, device, loss_mask=mask,
                             starts=starts, rank=rank, world_size=world_size)


def fine_tuning_context(settings, model, sizes_from_checkpoint: bool = False) -> int:
    """The profile's model `settings` (a GPTConfig) held against the model being fine-tuned: its
    dropout is applied, a longer context or any other setting it was not made with is refused in
    one sentence (fine-tuning continues the model as it is), and the context fine-tuning's
    windows have is returned. The vocabulary is the tokenizer's; under `start_from` the sizes
    are the GPT-2 checkpoint's (`sizes_from_checkpoint`)."""
    if settings.context_length > model.config.context_length:
        raise CourseError(f"model.context_length={settings.context_length} is longer than the "
                          f"{model.config.context_length} tokens the model being fine-tuned was made for: "
                          f"set model.context_length={model.config.context_length} (LLM_SETTINGS), or "
                          f"pretrain again (04_pretraining) with the longer context.")
    taken = {"vocab_size", "context_length", "dropout"} | ({"n_layer", "n_head", "n_embd"} if sizes_from_checkpoint
                                                           else set())
    for field in fields(settings):
        ours, theirs = getattr(settings, field.name), getattr(model.config, field.name)
        if field.name not in taken and ours != theirs:
            raise CourseError(f"model.{field.name}={ours!r} is not what the model being fine-tuned was made with "
                              f"({theirs!r}): fine-tuning continues that model as it is. Set "
                              f"model.{field.name}={theirs!r} (LLM_SETTINGS), or pretrain again with it "
                              f"(04_pretraining).")
    model.use_dropout(settings.dropout)
    return settings.context_length
