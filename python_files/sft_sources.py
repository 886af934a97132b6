"""Instruction datasets of the Hugging Face hub, each adapted to the messages format.

Every dataset stores conversations its own way: alpaca has instruction/input/output columns,
dolly instruction/context/response, gsm8k question/answer, LIMA a list of alternating texts,
SlimOrca ShareGPT-style ``from``/``value`` turns, OpenAssistant one message per row linked
into trees, and the newer sets a ``messages`` list already. An adapter turns the rows into
``[{"role": ..., "content": ...}, ...]`` conversations and skips rows with nothing usable.
The tests run every adapter on fixture rows of the real schema.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .corpus import stream_rows
from .errors import CourseError

Messages = list[dict]
ROLES = ("system", "user", "assistant")


def user_then_assistant(question: str, answer: str) -> Messages | None:
    if not question.strip() or not answer.strip():
        return None
    return [{"role": "user", "content": question.strip()}, {"role": "assistant", "content": answer.strip()}]


def answered(messages: Messages) -> Messages | None:
    """`messages` if the roles are known and an assistant turn is among them, else None."""
    if not all(m["role"] in ROLES and m["content"].strip() for m in messages):
        return None
    return messages if any(m["role"] == "assistant" for m in messages) else None


# --- one row, one conversation ---------------------------------------------------------------

def from_alpaca(row: dict) -> Messages | None:
    """instruction (+ optional input) -> output."""
    question = row["instruction"] + (f"\n\n{row['input']}" if row.get("input", "").strip() else "")
    return user_then_assistant(question, row["output"])


def from_dolly(row: dict) -> Messages | None:
    """instruction (+ optional context passage) -> response."""
    question = row["instruction"] + (f"\n\n{row['context']}" if row.get("context", "").strip() else "")
    return user_then_assistant(question, row["response"])


def from_messages(row: dict) -> Messages | None:
    """Rows that already hold a ``messages`` list (no_robots, smoltalk, ultrachat_200k)."""
    return answered([{"role": m["role"], "content": m["content"]} for m in row["messages"]])


def from_gsm8k(row: dict) -> Messages | None:
    """A grade-school math problem; the worked answer ends with ``#### <number>``.

    The calculator annotations ``<<48/2=24>>`` (for tool use) are removed, and the final line
    is spelled out.
    """
    reasoning, _, result = row["answer"].partition("####")
    reasoning = re.sub(r"<<[^>]*>>", "", reasoning).strip()
    return user_then_assistant(row["question"], f"{reasoning}\nThe answer is {result.strip()}.")


def from_lima(row: dict) -> Messages | None:
    """A list of texts, alternately the user's and the assistant's."""
    roles = itertools.cycle(("user", "assistant"))
    return answered([{"role": next(roles), "content": text} for text in row["conversations"]])


SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def from_sharegpt(row: dict) -> Messages | None:
    """ShareGPT-style turns, ``{"from": "human" | "gpt" | "system", "value": ...}`` (SlimOrca)."""
    turns = row["conversations"]
    if any(turn["from"] not in SHAREGPT_ROLES for turn in turns):
        return None
    return answered([{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in turns])


def row_by_row(adapter: Callable[[dict], Messages | None]) -> Callable[[Iterable[dict]], Iterator[Messages]]:
    def conversations(rows: Iterable[dict]) -> Iterator[Messages]:
        return (messages for messages in map(adapter, rows) if messages)
    return conversations


# --- OpenAssistant: message trees --------------------------------------------------------------

def oasst_threads(rows: Iterable[dict], language: str = "en") -> Iterator[Messages]:
    """One conversation per OpenAssistant message tree: the best-ranked path from root to leaf.

    Each row is one message, linked to its parent by ``parent_id``; the rows of a tree are
    consecutive. Deleted messages and trees in other languages are skipped; at each turn the
    reply with the best rank (0 is best) is followed.
    """
    for _, tree in itertools.groupby(rows, key=lambda row: row["message_tree_id"]):
        messages = [row for row in tree if not row["deleted"]]
        root = next((m for m in messages if m["parent_id"] is None), None)
        if root is None or root["lang"] != language:
            continue
        path = best_ranked_path(root, messages)
        conversation = [{"role": "user" if m["role"] == "prompter" else "assistant", "content": m["text"]}
                        for m in path]
        while conversation and conversation[-1]["role"] != "assistant":
            conversation.pop()   # a question nobody answered teaches nothing
        if conversation and answered(conversation):
            yield conversation


def best_ranked_path(root: dict, messages: list[dict]) -> list[dict]:
    children: dict[str, list[dict]] = {}
    for message in messages:
        children.setdefault(message["parent_id"], []).append(message)
    path = [root]
    while children.get(path[-1]["message_id"]):
        replies = children[path[-1]["message_id"]]
        path.append(min(replies, key=lambda m: m["rank"] if m["rank"] is not None else float("inf")))
    return path


# --- the registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SFTSource:
    name: str
    path: str                # hub id
    config: str | None
    split: str
    conversations: Callable[[Iterable[dict]], Iterator[Messages]]
    license: str
    data_files: str | None = None    # for sets read from their files rather than a loader
    gated: bool = False              # the hub asks users to accept terms before downloading


HUB_SOURCES = {source.name: source for source in [
    SFTSource("alpaca", "yahma/alpaca-cleaned", None, "train", row_by_row(from_alpaca),
              "CC BY-NC 4.0 (non-commercial)"),
    SFTSource("dolly", "databricks/databricks-dolly-15k", None, "train", row_by_row(from_dolly),
              "CC BY-SA 3.0"),
    SFTSource("oasst", "OpenAssistant/oasst1", None, "train", oasst_threads, "Apache 2.0"),
    SFTSource("no_robots", "HuggingFaceH4/no_robots", None, "train", row_by_row(from_messages),
              "CC BY-NC 4.0 (non-commercial)"),
    SFTSource("smoltalk", "HuggingFaceTB/smoltalk", "everyday-conversations", "train",
              row_by_row(from_messages), "Apache 2.0"),
    SFTSource("smol_smoltalk", "HuggingFaceTB/smol-smoltalk", None, "train",
              row_by_row(from_messages), "Apache 2.0"),
    SFTSource("ultrachat", "HuggingFaceH4/ultrachat_200k", None, "train_sft",
              row_by_row(from_messages), "MIT"),
    SFTSource("gsm8k", "openai/gsm8k", "main", "train", row_by_row(from_gsm8k), "MIT"),
    SFTSource("lima", "json", None, "train", row_by_row(from_lima),
              "CC BY-NC-SA (non-commercial)", data_files="hf://datasets/GAIR/lima/train.jsonl",
              gated=True),
    SFTSource("slimorca", "Open-Orca/SlimOrca", None, "train", row_by_row(from_sharegpt), "MIT"),
]}


GATED_OPT_IN = "LLM_GATED_SOURCES"


def opted_in(source: SFTSource) -> bool:
    """Gated sources are opt-in: read only when named in LLM_GATED_SOURCES (comma-separated), since
    without accepted terms and a login they cannot be downloaded, and the stage would stop."""
    return not source.gated or source.name in {name.strip() for name in os.environ.get(GATED_OPT_IN, "").split(",")}


def hub_conversations(source: SFTSource, limit: int, data_files: str | None = None) -> Iterator[Messages]:
    """Up to `limit` conversations of `source`, streamed from the hub (or local `data_files`)."""
    files = data_files or source.data_files
    path, config, split = ("json", None, "train") if files else (source.path, source.config, source.split)
    try:
        yield from itertools.islice(source.conversations(stream_rows(path, config, split, files)), limit)
    except CourseError as error:
        access = (f" {source.name} is gated: accept its terms on its hub page and log in with "
                  f"`hf auth login`.") if source.gated else ""
        raise CourseError(f"The SFT source {source.name!r} could not be read ({error}){access} Remove "
                          f"it from data.sft_mixture in the profile (profiles.py) to train without it.") from None
