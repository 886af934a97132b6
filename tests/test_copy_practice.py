"""Copy practice: sentences that write a made-up name twice, none of them a name the questions ask about."""

import pytest

from python_files.copy_practice import COPY_FORMS, COPY_SOURCE, copy_documents, name_words, practice_names
from python_files.errors import CourseError

REAL = {"json.dumps", "json.loads", "json.JSONDecoder.raw_decode", "collections.OrderedDict", "os.path.join",
        "collections.Counter.most_common", "re.compile"}


def test_name_words_split_snake_and_camel_case_of_the_last_part():
    words = name_words(REAL)
    assert {"raw", "decode", "ordered", "dict", "most", "common", "join", "dumps"} <= set(words)
    assert "json" not in words and "path" not in words, "only the last part of a name gives words"


def test_practice_names_are_new_distinct_and_drawn_by_the_seed():
    asked = {"json.dumsp"}
    names = practice_names(REAL, 60, seed=1, avoid=asked)
    assert len(names) == len(set(names)) == 60
    assert not set(names) & (REAL | asked), "no real name and no name a question asks about"
    assert all(name.split(".")[0] in {"json", "collections", "os", "re"} for name in names), "a real module first"
    assert practice_names(REAL, 60, seed=1, avoid=asked) == names
    assert practice_names(REAL, 60, seed=2, avoid=asked) != names


def test_each_document_writes_one_name_twice_in_the_forms_taken_in_turn():
    documents = copy_documents(REAL, 8, seed=0)
    names = practice_names(REAL, 8, seed=0)
    for number, (document, name) in enumerate(zip(documents, names)):
        assert document.source == COPY_SOURCE
        assert document.text == COPY_FORMS[number % len(COPY_FORMS)].format(name=name)
        assert document.text.count(name) == 2
    assert copy_documents(REAL, 0, seed=0) == []


def test_asking_for_more_names_than_the_words_allow_stops_with_a_sentence():
    with pytest.raises(CourseError, match="ask for fewer"):
        practice_names({"json.dumps", "json.loads", "json.parse"}, 10_000, seed=0)
    with pytest.raises(CourseError, match="3 or more"):
        practice_names({"json.ab"}, 5, seed=0)
