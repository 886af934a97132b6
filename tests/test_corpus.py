"""The corpus sources: the documentation reader on a fixture library and the real one, text
files, and the hub loader on fixture files of the hub schemas."""

import json
import textwrap
from pathlib import Path

import pytest

from python_files.corpus import (PACKAGE_DOCS, PYTHON_AND_PACKAGE_DOCS, PYTHON_DOCS,
                                 has_gutenberg_markers, hub_corpus, hub_documents, load_corpus,
                                 package_docs, paragraph_chunks, python_docs, stream_corpus, stream_rows,
                                 strip_gutenberg_license, take_bytes)
from python_files.document import Document
from python_files.errors import CourseError

FIXTURES = Path(__file__).parent / "fixtures"


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


@pytest.fixture
def fake_stdlib(tmp_path):
    write(tmp_path / "shapes" / "__init__.py", '''
        """Shapes and their areas."""
        import this_module_does_not_exist  # never imported: the reader only parses

        def area(shape, *, unit="cm"):
            """Return the area of shape."""

        def _helper():
            """Private: not documentation."""

        class Circle:
            """A round shape."""
            def scale(self, factor):
                """Make the circle bigger."""
            def _grow(self):
                """Private method."""
        ''')
    write(tmp_path / "_private.py", '"""A private module."""')
    write(tmp_path / "test" / "test_shapes.py", '"""Tests are not documentation."""')
    write(tmp_path / "posixpath.py", 'def join(a, *p):\n    """Join two or more pathname components."""\n')
    write(tmp_path / "broken.py", '"""Not Python 3."""\nprint "hello"\n')
    return tmp_path


def test_python_docs_reads_public_docstrings_with_qualified_names(fake_stdlib):
    documents = [d for d in python_docs(fake_stdlib) if not d.name.startswith("topic:")]
    by_name = {d.name: d.text for d in documents}
    assert list(by_name) == ["os.path.join", "shapes", "shapes.area", "shapes.Circle",
                             "shapes.Circle.scale"]
    assert by_name["shapes.area"] == "shapes.area(shape, *, unit='cm')\n\nReturn the area of shape."
    assert by_name["shapes.Circle.scale"].startswith("shapes.Circle.scale(factor)\n")
    assert by_name["shapes"] == "Module shapes\n\nShapes and their areas."


def test_package_docs_reads_installed_packages_without_importing_them(fake_stdlib, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_stdlib))   # `shapes` is now an installed package
    documents = list(package_docs(["shapes", "no_such_package_is_installed"]))
    assert [d.name for d in documents] == ["shapes", "shapes.area", "shapes.Circle",
                                           "shapes.Circle.scale"]
    assert {d.source for d in documents} == {PACKAGE_DOCS}


def test_the_packages_corpus_is_the_python_docs_and_more():
    python_only = load_corpus(PYTHON_DOCS)
    with_packages = load_corpus(PYTHON_AND_PACKAGE_DOCS)
    assert with_packages[:len(python_only)] == python_only
    assert {d.source for d in with_packages[len(python_only):]} == {PACKAGE_DOCS}
    assert any(d.name.startswith("torch.") for d in with_packages)


def test_python_docs_is_deterministic(fake_stdlib):
    assert list(python_docs(fake_stdlib)) == list(python_docs(fake_stdlib))


def test_the_real_documentation_has_the_objects_stage_05_asks_about():
    documents = load_corpus(PYTHON_DOCS)
    names = {d.name for d in documents}
    assert {"json.dumps", "os.path.join", "collections.Counter"} <= names
    assert any(name.startswith("topic:") for name in names)


def test_a_byte_budget_keeps_a_spread_of_the_library():
    documents = load_corpus(PYTHON_DOCS, max_bytes=100_000)
    assert 90_000 < sum(len(d.text.encode("utf-8")) for d in documents) <= 110_000
    first_letters = {d.name[0].lower() for d in documents}
    assert len(first_letters) > 10   # not just the modules that start with "a"


def test_text_files_are_read_as_utf8_documents(tmp_path):
    (tmp_path / "a.txt").write_text("First paragraph.\n\nSecond one.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Another file, ünïcode.", encoding="utf-8")
    documents = load_corpus(str(tmp_path / "*.txt"))
    assert [d.name for d in documents] == ["a.txt#0", "b.txt#0"]
    assert documents[1].text == "Another file, ünïcode."


def test_a_file_that_is_not_utf8_gets_one_clear_sentence(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(CourseError, match=r"latin1.txt is not UTF-8 text \(byte 0xe9 at position 3\)"):
        load_corpus(str(tmp_path / "latin1.txt"))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CourseError, match="No file matches"):
        load_corpus(str(tmp_path / "missing.txt"))


def test_long_files_are_cut_at_paragraph_breaks():
    paragraphs = [f"paragraph {i} " + "word " * 50 for i in range(40)]
    chunks = list(paragraph_chunks("\n\n".join(paragraphs), size=1000))
    assert len(chunks) > 5
    assert "\n\n".join(chunks) == "\n\n".join(paragraphs)   # nothing lost, nothing cut mid-paragraph


@pytest.mark.parametrize("fixture", ["tinystories.jsonl", "fineweb-edu.jsonl"])
def test_hub_rows_become_documents(fixture):
    rows = [json.loads(line) for line in (FIXTURES / "corpus" / fixture).read_text().splitlines()]
    documents = list(hub_documents("json", data_files=str(FIXTURES / "corpus" / fixture)))
    assert [d.text for d in documents] == [row["text"] for row in rows]


def test_hub_parquet_files_load_the_same_way(tmp_path):
    import pyarrow.json
    import pyarrow.parquet

    pyarrow.parquet.write_table(pyarrow.json.read_json(FIXTURES / "corpus" / "fineweb-edu.jsonl"),
                                tmp_path / "part-0.parquet")
    documents = list(hub_documents("parquet", data_files=str(tmp_path / "part-0.parquet")))
    assert documents[1].text.startswith("A prime number")


def test_a_missing_text_column_is_named():
    with pytest.raises(CourseError, match="no column 'story'"):
        list(hub_documents("json", data_files=str(FIXTURES / "corpus" / "tinystories.jsonl"), text_field="story"))


def test_the_hub_offline_gives_one_clear_sentence():
    # conftest sets HF_HUB_OFFLINE=1, as on a machine without network
    with pytest.raises(CourseError, match="Could not load the dataset 'roneneldan/TinyStories'"):
        load_corpus("hf:roneneldan/TinyStories")


def test_a_dataset_error_keeps_the_librarys_own_reason():
    """The sentence keeps what `datasets` said, which here names the splits there are."""
    with pytest.raises(CourseError, match=r"Could not load the dataset 'json' \(ValueError: Bad split: "
                                          r"validation\. Available splits: \['train'\]\)"):
        list(stream_rows("json", split="validation", data_files=str(FIXTURES / "corpus" / "tinystories.jsonl")))


GUTENBERG = FIXTURES / "gutenberg"


@pytest.mark.parametrize("book, body", [
    ("modern_markers.txt", "CHAPTER I\n\nIt was a quiet morning in the village."),
    ("this_ebook_markers.txt", "The river ran fast after the rain."),
    ("small_print_markers.txt", "Once there was a lighthouse keeper."),
])
def test_the_gutenberg_license_header_and_footer_are_stripped(book, body):
    text = (GUTENBERG / book).read_text(encoding="utf-8")
    assert has_gutenberg_markers(text)
    assert strip_gutenberg_license(text) == body


def test_a_book_without_markers_is_kept_whole():
    text = (GUTENBERG / "no_markers.txt").read_text(encoding="utf-8")
    assert not has_gutenberg_markers(text)
    assert strip_gutenberg_license(text) == text.strip()


def test_the_gutenberg_corpus_cleans_each_book(tmp_path):
    rows = [{"text": (GUTENBERG / name).read_text(encoding="utf-8"), "short_book_title": name}
            for name in ("modern_markers.txt", "no_markers.txt")]
    (tmp_path / "pg.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.warns(UserWarning, match="1 Gutenberg book"):
        documents = list(hub_corpus("gutenberg", data_files=str(tmp_path / "pg.jsonl")))
    assert documents[0].text.startswith("CHAPTER I") and "START OF" not in documents[0].text
    assert documents[1].text == rows[1]["text"].strip()


def test_a_corpus_is_streamed_not_held_in_memory(tmp_path):
    """take_bytes hands each document on as it comes: the first arrives before the source has
    been read further (a list would read all of it first, and hold a corpus of any size)."""
    def source():
        yield Document("first", "One paragraph.", "test")
        raise AssertionError("read past the first document before it was used")

    assert next(take_bytes(source(), None)).name == "first"
    (tmp_path / "a.txt").write_text("Some text.\n\nMore text.", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\xff not UTF-8")   # never read: the budget ends before it
    documents = stream_corpus(str(tmp_path / "*.txt"), max_bytes=5)
    assert [d.name for d in documents] == ["a.txt#0"]
