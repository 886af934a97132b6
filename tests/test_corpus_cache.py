"""The local parquet copy of streamed corpora: read back instead of streaming again, resumed
after an interruption, extended when a bigger budget asks for more."""

import json
from pathlib import Path

import pytest

from python_files.corpus import hub_corpus, stream_corpus
from python_files.document import Document
from python_files.corpus_cache import cached_stream, read_state

FINEWEB = str(Path(__file__).parent / "fixtures" / "corpus" / "fineweb-edu.jsonl")
DOCUMENTS = [Document(f"doc#{i}", f"text number {i:02d}", "test") for i in range(20)]  # 14 bytes each


class Stream:
    """A stream of DOCUMENTS that records where each call started, and can fail midway."""

    def __init__(self, fail_after: int | None = None):
        self.skips, self.fail_after = [], fail_after

    def __call__(self, skip):
        self.skips.append(skip)
        for index, document in enumerate(DOCUMENTS[skip:], start=skip):
            if self.fail_after is not None and index == self.fail_after:
                raise ConnectionError("the network went away")
            yield document


def test_a_second_read_comes_from_the_cache_without_streaming(tmp_path):
    stream = Stream()
    first = list(cached_stream(stream, tmp_path, max_bytes=14 * 8, part_bytes=14 * 3))
    again = list(cached_stream(stream, tmp_path, max_bytes=14 * 8, part_bytes=14 * 3))
    assert first == again == DOCUMENTS[:8]
    assert stream.skips == [0]
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]   # 3 + 3 + 2 documents


def test_a_bigger_budget_streams_only_what_the_cache_lacks(tmp_path):
    stream = Stream()
    list(cached_stream(stream, tmp_path, max_bytes=14 * 5))
    assert list(cached_stream(stream, tmp_path, max_bytes=14 * 12)) == DOCUMENTS[:12]
    assert stream.skips == [0, 5]
    assert read_state(tmp_path).documents == 12


def test_an_interrupted_stream_keeps_its_finished_parts_and_resumes(tmp_path):
    with pytest.raises(ConnectionError):
        list(cached_stream(Stream(fail_after=10), tmp_path, max_bytes=None, part_bytes=14 * 4))
    assert read_state(tmp_path).documents == 8           # two parts of 4; the third was lost
    stream = Stream()
    assert list(cached_stream(stream, tmp_path, max_bytes=None, part_bytes=14 * 4)) == DOCUMENTS
    assert stream.skips == [8]


def test_a_stream_read_to_its_end_is_never_streamed_again(tmp_path):
    stream = Stream()
    list(cached_stream(stream, tmp_path, max_bytes=None))
    assert read_state(tmp_path).complete
    assert list(cached_stream(stream, tmp_path, max_bytes=10**9)) == DOCUMENTS
    assert stream.skips == [0]


def test_a_hub_corpus_can_start_after_the_documents_already_read():
    documents = list(hub_corpus("fineweb-edu", data_files=FINEWEB))
    assert list(hub_corpus("fineweb-edu", data_files=FINEWEB, skip=2)) == documents[2:]


def test_a_hub_corpus_read_through_the_cache_is_the_same_as_streamed(tmp_path):
    streamed = list(hub_corpus("fineweb-edu", data_files=FINEWEB))
    stream = lambda skip: hub_corpus("fineweb-edu", data_files=FINEWEB, skip=skip)  # noqa: E731
    list(cached_stream(stream, tmp_path, max_bytes=300, part_bytes=200))
    assert list(cached_stream(stream, tmp_path, max_bytes=None, part_bytes=200)) == streamed
    assert json.loads((tmp_path / "cache.json").read_text())["complete"]


def test_the_cache_serves_a_hub_corpus_with_no_network(tmp_path):
    # conftest sets HF_HUB_OFFLINE=1: streaming would fail, the cached parts do not need it
    stream = lambda skip: hub_corpus("fineweb-edu", data_files=FINEWEB, skip=skip)  # noqa: E731
    cached = list(cached_stream(stream, tmp_path, max_bytes=200))
    assert list(stream_corpus("hf:fineweb-edu", max_bytes=200, cache_folder=tmp_path)) == cached
