"""Instruction datasets of the Hugging Face hub, each adapted to the messages format.

Every dataset stores conversations its own way: alpaca has instruction/input/output columns,
dolly instruction/context/response, and the newer sets a ``messages`` list already. An
adapter turns one row into ``[{"role": ..., "content": ...}, ...]``, or None for a row that
holds no usable conversation. The tests run every adapter on fixture rows of the real schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from .corpus import stream_rows
from .errors import CourseError

Messages = list[dict]


def user_then_assistant(question: str, answer: str) -> Messages | None:
    if not question.strip() or not answer.strip():
        return None
    return [{"role": "user", "content": question.strip()}, {"role": "assistant", "content": answer.strip()}]


def from_alpaca(row: dict) -> Messages | None:
    """instruction (+ optional input) -> output."""
    question = row["instruction"] + (f"\n\n{row['input']}" if row.get("input", "").strip() else "")
    return user_then_assistant(question, row["output"])


def from_dolly(row: dict) -> Messages | None:
    """instruction (+ optional context passage) -> response."""
    question = row["instruction"] + (f"\n\n{row['context']}" if row.get("context", "").strip() else "")
    return user_then_assistant(question, row["response"])


def from_messages(row: dict) -> Messages | None:
    """Rows that already hold a ``messages`` list (no_robots, smoltalk, ultrachat_200k).

    Kept when the roles are known and the conversation contains an assistant turn.
    """
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    known_roles = all(m["role"] in ("system", "user", "assistant") for m in messages)
    if not known_roles or not any(m["role"] == "assistant" for m in messages):
        return None
    return messages


@dataclass(frozen=True)
class SFTSource:
    name: str
    path: str                # hub id
    config: str | None
    split: str
    adapter: Callable[[dict], Messages | None]
    license: str


HUB_SOURCES = {source.name: source for source in [
    SFTSource("alpaca", "yahma/alpaca-cleaned", None, "train", from_alpaca, "CC BY-NC 4.0 (non-commercial)"),
    SFTSource("dolly", "databricks/databricks-dolly-15k", None, "train", from_dolly, "CC BY-SA 3.0"),
    SFTSource("no_robots", "HuggingFaceH4/no_robots", None, "train", from_messages, "CC BY-NC 4.0 (non-commercial)"),
    SFTSource("smoltalk", "HuggingFaceTB/smoltalk", "everyday-conversations", "train", from_messages, "Apache 2.0"),
    SFTSource("ultrachat", "HuggingFaceH4/ultrachat_200k", None, "train_sft", from_messages, "MIT"),
]}


def hub_conversations(source: SFTSource, limit: int, data_files: str | None = None) -> Iterator[Messages]:
    """Up to `limit` conversations of `source`, streamed from the hub (or `data_files`)."""
    path = "json" if data_files else source.path
    config = None if data_files else source.config
    try:
        rows = stream_rows(path, config, source.split if not data_files else "train", data_files)
        produced = 0
        for row in rows:
            if produced >= limit:
                return
            messages = source.adapter(row)
            if messages:
                produced += 1
                yield messages
    except CourseError as error:
        raise CourseError(f"The SFT source {source.name!r} could not be read ({error}) Remove it "
                          f"from sft_sources in the profile to train without it.") from None
