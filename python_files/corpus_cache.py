"""A local copy of what was streamed from the hub, so that a rerun does not stream it again.

Streaming a few hundred megabytes of FineWeb-Edu takes a while, and a Colab machine forgets
everything between sessions. So each document read from a hub corpus is also written to
parquet files in the artifacts folder (on Google Drive under Colab):

    corpus/<name>/part-00000.parquet, part-00001.parquet, ...   columns: name, text, source
    corpus/<name>/cache.json    how many documents and bytes the parts hold, and whether the
                                stream has ended (then there is nothing more to fetch)

A part is written once it holds `part_bytes` of text (and when the reading stops), under a
temporary name that is renamed when complete, and cache.json only after it. An interrupted
download keeps every finished part, and the next run streams on from where they end.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from .artifacts import atomic_path, atomic_write_text
from .document import Document

PART_BYTES = 64_000_000
COLUMNS = ["name", "text", "source"]


@dataclass
class CacheState:
    """The contents of cache.json."""
    documents: int = 0
    bytes: int = 0
    parts: int = 0
    complete: bool = False      # the stream ended: the parts hold all of it


def cached_stream(stream: Callable[[int], Iterator[Document]], folder: Path,
                  max_bytes: int | None, part_bytes: int = PART_BYTES) -> Iterator[Document]:
    """The documents of `stream` until `max_bytes` of text, read from the cache in `folder`
    as far as it goes and streamed after that.

    `stream(skip)` must give the same documents in the same order on every call, starting
    after the first `skip` of them: the hub datasets do.
    """
    state = read_state(folder)
    taken = 0
    for document in cached_documents(folder, state):
        if max_bytes is not None and taken >= max_bytes:
            return
        taken += text_bytes(document)
        yield document
    if state.complete or (max_bytes is not None and taken >= max_bytes):
        return      # the cache held enough: the hub is not contacted at all
    part: list[Document] = []
    part_size = 0
    for document in stream(state.documents):
        size = text_bytes(document)
        taken, part_size = taken + size, part_size + size
        part.append(document)
        yield document
        if part_size >= part_bytes:
            write_part(folder, state, part)
            part, part_size = [], 0
        if max_bytes is not None and taken >= max_bytes:
            break
    else:
        state.complete = True
    write_part(folder, state, part)


def text_bytes(document: Document) -> int:
    return len(document.text.encode("utf-8"))


def read_state(folder: Path) -> CacheState:
    path = folder / "cache.json"
    return CacheState(**json.loads(path.read_text(encoding="utf-8"))) if path.exists() else CacheState()


def part_path(folder: Path, index: int) -> Path:
    return folder / f"part-{index:05d}.parquet"


def cached_documents(folder: Path, state: CacheState) -> Iterator[Document]:
    """The documents of the finished parts, read a batch at a time (not whole files)."""
    import pyarrow.parquet as pq

    for index in range(state.parts):
        for batch in pq.ParquetFile(part_path(folder, index)).iter_batches(batch_size=1024,
                                                                            columns=COLUMNS):
            for row in batch.to_pylist():
                yield Document(**row)


def write_part(folder: Path, state: CacheState, part: list[Document]) -> None:
    """Add `part` as the next parquet file (if it has documents), then record it in cache.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if part:
        table = pa.Table.from_pylist([asdict(document) for document in part])
        with atomic_path(part_path(folder, state.parts)) as temporary:
            pq.write_table(table, temporary)
        state.documents += len(part)
        state.bytes += sum(map(text_bytes, part))
        state.parts += 1
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "cache.json", json.dumps(asdict(state), indent=2))
