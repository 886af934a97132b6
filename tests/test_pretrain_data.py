"""Stage 02: cleaning, the split by document, and the token files with their meta.json."""

import json

import numpy as np
import pytest

from python_files.artifacts import Artifacts
from python_files.corpus import Document
from python_files.errors import CourseError
from python_files.pretrain_data import (clean_documents, clean_text, open_tokens,
                                        prepare_pretraining_data, read_pretrain_meta,
                                        split_documents, token_dtype)
from python_files.tokenizer import END_OF_TEXT, TextTokenizer, save_tokenizer, train_tokenizer

TEXTS = [f"Document number {i} talks about topic {i % 7} with some words." * (1 + i % 3)
         for i in range(60)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(train_tokenizer(TEXTS, vocab_size=320), path)
    return TextTokenizer.load(path)


def documents(texts=TEXTS):
    return [Document(f"doc{i}", text, "test") for i, text in enumerate(texts)]


def test_clean_text_normalizes_whitespace_but_keeps_indentation():
    assert clean_text("a  \r\nb\r\n\r\n\r\n\r\n    c\t\n\n") == "a\nb\n\n    c"
    assert clean_text("e\u0301") == "\u00e9"   # NFC: e + combining accent -> é


def test_empty_and_duplicate_documents_are_dropped():
    cleaned = clean_documents(documents(["same text", "  \n ", "same text  ", "other"]))
    assert [d.text for d in cleaned.documents] == ["same text", "other"]
    assert (cleaned.empty, cleaned.duplicates) == (1, 1)


def test_the_split_is_by_document_seeded_and_complete():
    docs = documents()
    splits = split_documents(docs, val_fraction=0.1, seed=3)
    assert len(splits["val"]) == 6
    assert {d.name for d in splits["train"]} | {d.name for d in splits["val"]} == {d.name for d in docs}
    assert not {d.name for d in splits["train"]} & {d.name for d in splits["val"]}
    assert split_documents(docs, 0.1, seed=3) == splits
    assert split_documents(docs, 0.1, seed=4) != splits


def test_token_files_hold_each_document_followed_by_end_of_text(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    data = prepare_pretraining_data(documents(), tokenizer, artifacts, "test", tokenizer.vocab_size,
                                    val_fraction=0.1, workers=2)
    meta = read_pretrain_meta(artifacts)
    assert meta == data.meta
    splits = split_documents(clean_documents(documents()).documents, 0.1)
    end = tokenizer.special_id(END_OF_TEXT)
    for split in ("train", "val"):
        expected = [t for d in splits[split] for t in tokenizer.encode(d.text) + [end]]
        tokens = open_tokens(artifacts, split)
        assert tokens.dtype == np.uint16
        assert tokens.tolist() == expected
        assert meta["splits"][split]["tokens"] == len(expected)
        assert meta["splits"][split]["bytes"] == sum(len(d.text.encode()) for d in splits[split])
    assert meta["tokenizer_sha256"] == tokenizer.sha256


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
        prepare_pretraining_data(documents(["", "  \n"]), tokenizer, Artifacts(tmp_path, "a"), "test",
                                 tokenizer.vocab_size, val_fraction=0.1)


def test_a_truncated_token_file_is_detected(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    prepare_pretraining_data(documents(), tokenizer, artifacts, "test", tokenizer.vocab_size, 0.1)
    path = artifacts.pretrain_tokens("train")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CourseError, match="run 02_pretrain_data again"):
        open_tokens(artifacts, "train")


def test_token_dtype_fits_the_vocabulary():
    assert token_dtype(2**16) == np.uint16      # ids 0..65535
    assert token_dtype(2**16 + 1) == np.uint32
