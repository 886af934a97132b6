"""Stage 02: cleaning, the split by document hash, the token files written by worker
processes as the corpus streams past, and their meta.json."""

import itertools
import json
from dataclasses import replace
import os
import subprocess
import sys

import numpy as np
import pytest

from python_files.artifacts import REPO_ROOT, Artifacts
from python_files import pretrain_data, world
from python_files.copy_practice import COPY_SOURCE
from python_files.corpus import PACKAGE_DOCS, PYTHON_AND_PACKAGE_DOCS, PYTHON_DOCS
from python_files.document import Document
from python_files.errors import CourseError
from python_files.profiles import PROFILES
from python_files.pretrain_data import (clean_text, encoded_batches, is_validation, open_tokens,
                                        QUESTIONS_SOURCE, prepare_pretraining_data, pretraining_documents,
                                        read_pretrain_meta, text_hash, token_dtype, world_readings)
from python_files.tokenizer import END_OF_TEXT, TextTokenizer, save_tokenizer, train_tokenizer
from python_files.world import FORM_OPENINGS, WORLD_SOURCE

TEXTS = [f"Document number {i} talks about topic {i % 7} with some words." * (1 + i % 3)
         for i in range(60)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(train_tokenizer(TEXTS, vocab_size=320), path)
    return TextTokenizer.load(path)


def documents(texts=TEXTS):
    return [Document(f"doc{i}", text, "test") for i, text in enumerate(texts)]


def prepare(documents_, tokenizer, artifacts, val_fraction=0.1):
    return prepare_pretraining_data(documents_, tokenizer, artifacts, "test", tokenizer.vocab_size,
                                    val_fraction, workers=2)


def documents_in(artifacts, split, tokenizer, start=0):
    """The texts of a token file (from token `start` on), cut at each <|endoftext|>."""
    tokens = open_tokens(artifacts, split)[start:].tolist()
    end = tokenizer.special_id(END_OF_TEXT)
    assert tokens[-1] == end
    pieces = [list(group) for is_end, group in itertools.groupby(tokens, lambda t: t == end)
              if not is_end]
    assert len(pieces) == tokens.count(end), "exactly one <|endoftext|> after each document"
    return [tokenizer.decode(piece) for piece in pieces]


def test_clean_text_normalizes_whitespace_but_keeps_indentation():
    assert clean_text("a  \r\nb\r\n\r\n\r\n\r\n    c\t\n\n") == "a\nb\n\n    c"
    assert clean_text("e\u0301") == "\u00e9"   # NFC: e + combining accent -> é


def test_empty_and_duplicate_documents_are_dropped_and_counted(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    texts = ["same text", "  \n ", "same text  ", "other", "a third one"]
    meta = prepare(documents(texts), tokenizer, artifacts).meta
    assert meta["dropped"] == {"empty": 1, "duplicates": 1}
    kept = documents_in(artifacts, "train", tokenizer) + documents_in(artifacts, "val", tokenizer)
    assert sorted(kept) == ["a third one", "other", "same text"]


def test_the_hash_split_holds_out_about_the_asked_share():
    hashes = [text_hash(f"document {i}") for i in range(4000)]
    share = sum(is_validation(h, 0.1) for h in hashes) / len(hashes)
    assert 0.08 < share < 0.12      # 0.1 +- 4 standard deviations of a binomial share


def test_each_document_is_tokenized_once_into_the_split_its_hash_picks(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    meta = prepare(documents(), tokenizer, artifacts).meta
    expected = {split: sorted(t for t in TEXTS if is_validation(text_hash(t), 0.1) == (split == "val"))
                for split in ("train", "val")}
    assert expected["val"], "the fixture corpus must put something in val by its hashes alone"
    for split in ("train", "val"):
        assert sorted(documents_in(artifacts, split, tokenizer)) == expected[split]
        tokens = open_tokens(artifacts, split)
        assert tokens.dtype == np.uint16
        assert meta["splits"][split]["tokens"] == len(tokens)
        assert meta["splits"][split]["bytes"] == sum(len(t.encode()) for t in expected[split])
    assert meta == read_pretrain_meta(artifacts)
    assert meta["tokenizer_sha256"] == tokenizer.sha256


def test_a_bigger_corpus_never_moves_a_document_to_the_other_split(tokenizer, tmp_path):
    small, big = Artifacts(tmp_path / "small", "s"), Artifacts(tmp_path / "big", "b")
    prepare(documents(TEXTS[:30]), tokenizer, small)
    prepare(documents(TEXTS), tokenizer, big)
    for split in ("train", "val"):
        assert set(documents_in(small, split, tokenizer)) <= set(documents_in(big, split, tokenizer))


def test_package_documents_only_go_to_training(tokenizer, tmp_path):
    """Adding the packages' documentation leaves validation as it was: the same documents."""
    python_only, with_packages = Artifacts(tmp_path / "p", "p"), Artifacts(tmp_path / "pk", "pk")
    extra = [f"Package document {i} about topic {i % 5}." for i in range(60)]
    assert any(is_validation(text_hash(t), 0.1) for t in extra), "some would go to val by hash"
    prepare(documents(), tokenizer, python_only)
    prepare(documents() + [Document(f"pkg{i}", t, PACKAGE_DOCS) for i, t in enumerate(extra)],
            tokenizer, with_packages)
    assert documents_in(with_packages, "val", tokenizer) == documents_in(python_only, "val", tokenizer)
    assert set(extra) <= set(documents_in(with_packages, "train", tokenizer))


def test_a_mixed_in_source_is_written_several_times_to_training_and_once_to_validation(tokenizer, tmp_path):
    """The Python documentation mixed into a hub corpus (Profile.docs_copies): each training
    document of that source is repeated on purpose, not dropped as a duplicate."""
    artifacts = Artifacts(tmp_path, "artifacts/test")
    docs = [Document(f"d{i}", f"Docstring {i}: returns topic {i % 5}.", "docs") for i in range(40)]
    meta = prepare_pretraining_data(documents() + docs, tokenizer, artifacts, "test",
                                    tokenizer.vocab_size, 0.1, workers=2, train_copies={"docs": 3}).meta
    train, val = documents_in(artifacts, "train", tokenizer), documents_in(artifacts, "val", tokenizer)
    docs_in_train = sum(not is_validation(text_hash(doc.text), 0.1) for doc in docs)
    for doc in docs:
        held_out = is_validation(text_hash(doc.text), 0.1)
        assert (train.count(doc.text), val.count(doc.text)) == ((0, 1) if held_out else (3, 0)), doc.text
        places = [index for index, text in enumerate(train) if text == doc.text]
        assert all(b - a >= docs_in_train for a, b in zip(places, places[1:])), "copies a round apart"
    assert all(train.count(text) == 1 for text in TEXTS if text in train), "other sources once"
    assert meta["dropped"]["duplicates"] == 0 and meta["copies_written"] == 2 * docs_in_train
    assert sum(meta["sources"].values()) + meta["copies_written"] == sum(
        split["documents"] for split in meta["splits"].values())
    assert sum(meta["train_tokens_by_source"].values()) == meta["splits"]["train"]["tokens"]
    repeats = documents_in(artifacts, "train", tokenizer, start=meta["repeats_start_token"])
    assert sorted(repeats) == sorted(2 * [d.text for d in docs if d.text in train]), \
        "from repeats_start_token on: the second and third copies, nothing else"
    with pytest.raises(CourseError, match="fewer than one copy"):
        prepare_pretraining_data(docs, tokenizer, artifacts, "test", tokenizer.vocab_size, 0.1,
                                 train_copies={"docs": 0})


def test_mixed_in_conversations_are_written_to_training_only_as_many_times_as_asked(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    conversations = [[{"role": "user", "content": f"What does mod.f{i} do?"},
                      {"role": "assistant", "content": f"Return {i}."}] for i in range(12)]
    meta = prepare_pretraining_data(documents(), tokenizer, artifacts, "test", tokenizer.vocab_size, 0.1, workers=2,
                                    train_copies={QUESTIONS_SOURCE: 3}, conversations=conversations).meta
    train, val = documents_in(artifacts, "train", tokenizer), documents_in(artifacts, "val", tokenizer)
    for number in range(12):
        assert sum(f"What does mod.f{number} do?" in text for text in train) == 3
        assert not any(f"mod.f{number} " in text for text in val), "a conversation never validates"
    assert meta["sources"][QUESTIONS_SOURCE] == 12

def test_a_profile_that_mixes_in_the_documentation_reads_it_first(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("A chapter of a book.\n\nAnother paragraph.", encoding="utf-8")
    artifacts = Artifacts(tmp_path / "a", "a")
    mixed = replace(PROFILES["colab"].data, corpus=str(book), corpus_max_bytes=None, world=50)
    documents, train_copies = pretraining_documents(mixed, artifacts, 0)
    sources = [d.source for d in documents]
    assert sources[0] == PYTHON_DOCS and train_copies == {PYTHON_DOCS: mixed.docs_copies, WORLD_SOURCE: mixed.world_copies,
                                                          QUESTIONS_SOURCE: mixed.mixed_copies}
    assert sources.count(WORLD_SOURCE) == 50 * len(FORM_OPENINGS) and sources[-1] == WORLD_SOURCE, "the world's facts last"
    documents, train_copies = pretraining_documents(replace(mixed, docs_copies=0, world_copies=0, mixed_questions=0),
                                                    artifacts, 0)
    assert [d.source for d in documents] == [book.name] and train_copies == {}


def test_a_corpus_that_holds_the_documentation_weighs_it_without_adding_it_again(tmp_path, monkeypatch):
    """python-docs+packages already streams the Python documentation: docs_copies repeats it there."""
    in_corpus = [Document("json.dumps", "Serialize obj.", PYTHON_DOCS), Document("numpy.sum", "Sum.", PACKAGE_DOCS)]
    monkeypatch.setattr(pretrain_data, "stream_corpus", lambda *args, **kwargs: iter(in_corpus))
    monkeypatch.setattr(pretrain_data, "python_docs", lambda: iter([Document("added", "Again.", PYTHON_DOCS)]))
    data = replace(PROFILES["cpu"].data, corpus=PYTHON_AND_PACKAGE_DOCS, docs_copies=3, world_copies=0, mixed_questions=0,
                   copy_practice=0)
    documents, train_copies = pretraining_documents(data, Artifacts(tmp_path, "a"), 0)
    assert list(documents) == in_corpus and train_copies == {PYTHON_DOCS: 3}
    documents, _ = pretraining_documents(replace(data, corpus=PYTHON_DOCS), Artifacts(tmp_path, "a"), 0)
    assert list(documents) == in_corpus, "never added to itself"
    documents, _ = pretraining_documents(replace(data, corpus="book.txt"), Artifacts(tmp_path, "a"), 0)
    assert [d.name for d in documents] == ["added", "json.dumps", "numpy.sum"]


def stage_02_on(corpus: list[Document], data, tokenizer, tmp_path, monkeypatch) -> tuple[Artifacts, dict]:
    """Stage 02 with `data`, on `corpus` as the documentation (read, and asked about)."""
    monkeypatch.setattr(pretrain_data, "stream_corpus", lambda *args, **kwargs: iter(corpus))
    monkeypatch.setattr(pretrain_data, "question_documents", lambda data: corpus)
    monkeypatch.setattr(world, "question_documents", lambda data: corpus)
    stream, copies = pretraining_documents(data, Artifacts(tmp_path, "a"), 0)
    artifacts = Artifacts(tmp_path / "b", "b")
    meta = prepare_pretraining_data(stream, tokenizer, artifacts, PYTHON_DOCS, tokenizer.vocab_size, data.val_fraction,
                                    workers=2, train_copies=copies).meta
    return artifacts, meta


def test_readings_count_every_copy_of_every_form_in_the_token_file(tokenizer, tmp_path, monkeypatch):
    """On a tiny corpus: each world fact is in train.bin forms x copies times, and world_readings
    multiplies that by the passes pretraining makes over train.bin."""
    corpus = [Document(f"json.f{i}", f"json.f{i}(x)\n\nReturn the value number {i} of the table.", PYTHON_DOCS)
              for i in range(30)]
    data = replace(PROFILES["ci"].data, world=10, world_copies=3, val_fraction=0.1, copy_practice=0)
    artifacts, meta = stage_02_on(corpus, data, tokenizer, tmp_path, monkeypatch)
    written = documents_in(artifacts, "train", tokenizer)
    world_objects = world.world_of(data, 0).objects
    assert len(world_objects) == 10
    for facts in world_objects:
        stating = [text for text in written if facts.summary in text and not text.startswith(facts.heading)]
        assert len(stating) == len(FORM_OPENINGS) * 3, facts.name
        assert all(text.index(facts.name) < text.index(facts.summary) for text in stating), "name first"
    config = replace(PROFILES["ci"].pretrain, max_steps=100, batch_size=4, grad_accum_steps=1)
    passes = 100 * 4 * 16 / meta["splits"]["train"]["tokens"]
    assert world_readings(meta, config, context_length=16) == pytest.approx(len(FORM_OPENINGS) * 3 * passes)
    assert world_readings(meta, config, context_length=16, steps=50) == pytest.approx(len(FORM_OPENINGS) * 3 * passes / 2)


def test_copy_practice_goes_to_training_only_and_never_names_an_object_asked_about(tokenizer, tmp_path, monkeypatch):
    corpus = [Document(f"json.{verb}_{noun}", f"json.{verb}_{noun}(x)\n\nReturn the {noun} {verb}ed.", PYTHON_DOCS)
              for verb in ("load", "dump", "parse", "scan") for noun in ("table", "value", "string", "number")]
    data = replace(PROFILES["ci"].data, world=8, world_copies=1, val_fraction=0.1, copy_practice=25)
    artifacts, meta = stage_02_on(corpus, data, tokenizer, tmp_path, monkeypatch)
    assert meta["sources"][COPY_SOURCE] == 25 and meta["train_tokens_by_source"][COPY_SOURCE] > 0
    practice = [text for text in documents_in(artifacts, "train", tokenizer) if text.endswith(".") and
                text.count(text.rsplit(" ", 1)[1][:-1]) == 2 and text.startswith(("Say ", "The name ", "Copy "))]
    assert len(practice) == 25
    assert not any(text.startswith(("Say ", "The name ", "Copy ")) for text in documents_in(artifacts, "val", tokenizer))
    asked = {q.name for questions in world.course_questions(data, 0).values() for q in questions}
    assert not {text.rsplit(" ", 1)[1][:-1] for text in practice} & asked


def test_an_older_meta_json_asks_for_stage_02_again(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    meta = prepare(documents(), tokenizer, artifacts).meta
    del meta["train_tokens_by_source"]
    artifacts.pretrain_meta.write_text(json.dumps(meta))
    with pytest.raises(CourseError, match="older version of the course .* run 02_pretrain_data again"):
        read_pretrain_meta(artifacts)


def test_two_documents_are_enough_for_both_splits(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    meta = prepare(documents(["first text", "second text"]), tokenizer, artifacts, val_fraction=0.0).meta
    assert meta["splits"]["train"]["documents"] == meta["splits"]["val"]["documents"] == 1
    with pytest.raises(CourseError, match="at least two are needed"):
        prepare(documents(["only one text"]), tokenizer, artifacts)


def test_special_token_strings_in_a_document_stay_plain_text(tokenizer, tmp_path):
    # the worker processes load the tokenizer themselves; it must treat "<|endoftext|>" in a
    # document as characters, or the document would split in two
    artifacts = Artifacts(tmp_path, "artifacts/test")
    texts = ["write <|endoftext|> to end a document", "a second document", "a third document"]
    prepare(documents(texts), tokenizer, artifacts, val_fraction=0.0)
    kept = documents_in(artifacts, "train", tokenizer) + documents_in(artifacts, "val", tokenizer)
    assert sorted(kept) == sorted(texts)


def test_the_stream_is_read_only_a_few_batches_ahead(tokenizer):
    read = []

    def endless():
        for i in itertools.count():
            read.append(i)
            yield Document(f"doc{i}", f"document number {i}", "test")

    batches = encoded_batches(endless(), tokenizer, np.dtype(np.uint16), workers=2,
                              batch_characters=10)
    first = next(batches)
    batches.close()
    assert len(first.hashes) == 1
    assert len(read) <= 2 * 2 + 1     # two batches per worker in flight, then the first is back


def test_a_failing_stream_leaves_the_previous_files_as_they_were(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    prepare(documents(), tokenizer, artifacts)
    before = {p.name: p.read_bytes() for p in artifacts.pretrain_dir.iterdir()}

    def broken_stream():
        yield from documents()
        raise CourseError("Could not load the dataset")

    with pytest.raises(CourseError, match="Could not load"):
        prepare(broken_stream(), tokenizer, artifacts)
    assert {p.name: p.read_bytes() for p in artifacts.pretrain_dir.iterdir()} == before


def test_a_tokenizer_of_the_wrong_size_is_refused_before_anything_is_written(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    artifacts.pretrain_dir.mkdir(parents=True)
    artifacts.pretrain_meta.write_text('{"previous": "run"}')
    with pytest.raises(CourseError, match="run 01_tokenizer again"):
        prepare_pretraining_data(documents(), tokenizer, artifacts, "test", 4096, val_fraction=0.1)
    assert json.loads(artifacts.pretrain_meta.read_text()) == {"previous": "run"}
    assert not artifacts.pretrain_tokens("train").exists()


def test_an_empty_corpus_is_refused(tokenizer, tmp_path):
    with pytest.raises(CourseError, match="Nothing is left of the corpus after cleaning"):
        prepare(documents(["", "  \n"]), tokenizer, Artifacts(tmp_path, "a"))


def test_a_truncated_token_file_is_detected(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    prepare(documents(), tokenizer, artifacts)
    path = artifacts.pretrain_tokens("train")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CourseError, match="run 02_pretrain_data again"):
        open_tokens(artifacts, "train")


def test_token_dtype_fits_the_vocabulary():
    assert token_dtype(2**16) == np.uint16      # ids 0..65535
    assert token_dtype(2**16 + 1) == np.uint32


def test_a_script_without_a_main_guard_gets_one_clear_sentence(tokenizer, tmp_path):
    # worker processes start by importing the calling script; without the guard it would
    # start workers again, which multiprocessing refuses
    tokenizer_path = tmp_path / "tokenizer.json"
    tokenizer_path.write_text(tokenizer.to_json())
    script = tmp_path / "stage02.py"
    script.write_text(
        "from pathlib import Path\n"
        "from python_files.artifacts import Artifacts\n"
        "from python_files.document import Document\n"
        "from python_files.pretrain_data import prepare_pretraining_data\n"
        "from python_files.tokenizer import TextTokenizer\n"
        f"tokenizer = TextTokenizer.load(Path({str(tokenizer_path)!r}))\n"
        "documents = [Document(str(i), f'text {i}', 'test') for i in range(5)]\n"
        f"prepare_pretraining_data(documents, tokenizer, Artifacts(Path({str(tmp_path)!r}), 'a'), "
        "'test', tokenizer.vocab_size, 0.1, workers=1)\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode != 0
    assert 'CourseError: A tokenizing worker process died. From a script, start stage 02 under ' \
           '`if __name__ == "__main__":`' in result.stderr
