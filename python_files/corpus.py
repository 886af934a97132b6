"""Where the text comes from: the embedded Python documentation, your own files, or the hub.

A corpus is a stream of `Document`s. Every source yields them in a deterministic order, so
two runs of the course on the same machine see exactly the same text.

`stream_corpus(spec)` yields them one at a time (`load_corpus` collects them in a list) and
understands three kinds of spec (the `corpus` field of a profile, or the
`LLM_CORPUS` environment variable):

- ``python-docs``: the documentation of the running Python installation (offline);
- ``python-docs+packages``: that, and the documentation of the installed packages the course
  requires (numpy, torch, ...): five times more text of the same kind, still offline;
- ``hf:<name>`` for the corpora of `HUB_CORPORA` (``hf:fineweb-edu``, ``hf:gutenberg``, ...),
  or ``hf:<dataset id>`` / ``hf:<dataset id>:<config>`` for any hub dataset with a ``text``
  column, streamed;
- anything else: comma-separated paths or glob patterns of UTF-8 text files.
"""

from __future__ import annotations

import ast
import glob
import importlib.util
import inspect
import re
import sysconfig
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .corpus_cache import cached_stream
from .document import Document
from .errors import CourseError, library_reason

PYTHON_DOCS = "python-docs"
PACKAGE_DOCS = "package-docs"                       # the source of the packages' documents
PYTHON_AND_PACKAGE_DOCS = "python-docs+packages"
HUB_PREFIX = "hf:"

# The packages the course requires, and the big ones they bring along (pandas with datasets,
# IPython and tornado with jupyterlab): installed on every learner's machine, documented like
# the standard library. sympy and networkx (installed with torch) are left out: mostly maths.
COURSE_PACKAGES = ("numpy", "torch", "matplotlib", "datasets", "tokenizers", "huggingface_hub",
                   "pandas", "IPython", "tornado", "jinja2", "fsspec")

# Folders that hold tests, demos or third-party code, not documentation.
SKIPPED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test",
                       "turtledemo", "__pycache__", "lib2to3", "ensurepip", "idlelib"}
# os.path is implemented in posixpath.py; learners know it by its public name.
MODULE_ALIASES = {"posixpath": "os.path"}
# Long text files are cut into documents of about this many characters, at paragraph breaks,
# so that a single book still gives a train/validation split by document.
TEXT_FILE_DOCUMENT_CHARS = 4000


def load_corpus(spec: str, max_bytes: int | None = None,
                cache_folder: Path | None = None) -> list[Document]:
    """Read the corpus named by `spec`, stopping once `max_bytes` of UTF-8 text are collected."""
    documents = list(stream_corpus(spec, max_bytes, cache_folder))
    if not documents:
        raise CourseError(f"The corpus {spec!r} holds no text: point LLM_CORPUS at files "
                          f"or a dataset that contain some.")
    return documents


def stream_corpus(spec: str, max_bytes: int | None = None,
                  cache_folder: Path | None = None) -> Iterator[Document]:
    """The documents of `spec` one at a time, until `max_bytes` of UTF-8 text.

    Hub corpora are streamed, and with `cache_folder` kept there as parquet files, so that the
    next call reads them from disk (see corpus_cache.py).
    """
    if spec == PYTHON_DOCS:
        yield from evenly_spread(list(python_docs()), max_bytes)
    elif spec == PYTHON_AND_PACKAGE_DOCS:
        yield from evenly_spread(list(python_docs()) + list(package_docs()), max_bytes)
    elif spec.startswith(HUB_PREFIX) and cache_folder is not None:
        name = spec[len(HUB_PREFIX):]
        yield from cached_stream(lambda skip: hub_corpus(name, skip=skip), cache_folder, max_bytes)
    elif spec.startswith(HUB_PREFIX):
        yield from take_bytes(hub_corpus(spec[len(HUB_PREFIX):]), max_bytes)
    else:
        yield from take_bytes(text_file_documents(expand_paths(spec)), max_bytes)


def take_bytes(documents: Iterable[Document], max_bytes: int | None) -> Iterator[Document]:
    """The first documents of a stream, one at a time, until `max_bytes` of UTF-8 text have
    passed: a generator, so that a corpus of any size goes through stage 02 in little memory."""
    if max_bytes is not None and max_bytes <= 0:
        return
    total = 0
    for document in documents:
        yield document
        total += len(document.text.encode("utf-8"))
        if max_bytes is not None and total >= max_bytes:
            return      # before asking the source for one more document


def evenly_spread(documents: list[Document], max_bytes: int | None) -> list[Document]:
    """Every k-th document, with k chosen so that about `max_bytes` are kept.

    Taking the first documents of the alphabetical standard library would give a corpus
    about `abc`, `argparse` and `asyncio` only; a stride keeps every corner of it.
    """
    total = sum(len(d.text.encode("utf-8")) for d in documents)
    if max_bytes is None or total <= max_bytes:
        return documents
    stride = total / max_bytes
    spread = [documents[int(i * stride)] for i in range(int(len(documents) / stride))]
    return list(take_bytes(spread, max_bytes))


# --- the embedded corpus: documentation of the running Python ------------------------------

def python_docs(stdlib_dir: str | Path | None = None) -> Iterator[Document]:
    """Docstrings of the standard library, then the pydoc topics (keywords, operators, ...).

    Docstrings are read from the source files with `ast`, never by importing the modules:
    importing arbitrary modules runs their code (some open windows, some start servers).
    """
    stdlib = Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        module = module_name(path.relative_to(stdlib))
        if module is not None:
            yield from module_documents(path, module)
    yield from pydoc_topics()


def package_docs(packages: Iterable[str] = COURSE_PACKAGES) -> Iterator[Document]:
    """Docstrings of the installed `packages`, read from their source files like the stdlib's.

    A package that is not installed is skipped: the corpus is a little smaller, not broken.
    """
    for package in packages:
        root = package_folder(package)
        if root is None:
            continue
        for path in sorted(root.rglob("*.py")):
            module = module_name(path.relative_to(root.parent))
            if module is not None:
                yield from module_documents(path, module, source=PACKAGE_DOCS)


def package_folder(package: str) -> Path | None:
    """Where an installed package's files are, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def module_name(relative_path: Path) -> str | None:
    """`json/decoder.py` -> `json.decoder`; None for private, test and demo files."""
    parts = list(relative_path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or any(part in SKIPPED_DIRS for part in relative_path.parts):
        return None
    if any(part.startswith("_") or "-" in part for part in parts):
        return None
    name = ".".join(parts)
    return MODULE_ALIASES.get(name, name)


def module_documents(path: Path, module: str, source: str = PYTHON_DOCS) -> Iterator[Document]:
    """One document for the module, and one for each public class, function and method."""
    try:
        with tokenize.open(path) as file:  # honours the file's encoding declaration
            tree = ast.parse(file.read())
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return  # a few stdlib files are templates or target other Python versions
    yield from documented(tree, module, source, heading=f"Module {module}")
    for node in tree.body:
        if is_public_definition(node):
            yield from documented(node, f"{module}.{node.name}", source)
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if is_public_definition(member):
                        yield from documented(member, f"{module}.{node.name}.{member.name}",
                                              source, is_method=True)


def is_public_definition(node: ast.AST) -> bool:
    definitions = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return isinstance(node, definitions) and not node.name.startswith("_")


def documented(node: ast.AST, name: str, source: str, heading: str | None = None,
               is_method: bool = False) -> Iterator[Document]:
    """A Document for `node` if it has a docstring: a heading line, a blank line, the text."""
    docstring = ast.get_docstring(node, clean=True)
    if not docstring or not docstring.strip():
        return
    if heading is None:
        heading = f"class {name}" if isinstance(node, ast.ClassDef) else \
            f"{name}({signature(node, is_method)})"
    yield Document(name=name, text=f"{heading}\n\n{docstring.strip()}", source=source)


def signature(function: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> str:
    """The parameter list as written in the source, without `self` or `cls` for methods."""
    arguments = function.args
    if is_method and arguments.args and arguments.args[0].arg in ("self", "cls"):
        arguments = ast.arguments(**{**arguments.__dict__, "args": arguments.args[1:]})
    return ast.unparse(arguments)


def pydoc_topics() -> Iterator[Document]:
    """The help topics of `help('topics')`: the language reference, shipped as data."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some Linux distributions package it separately
        return
    for key in sorted(topics):
        yield Document(name=f"topic:{key}", text=f"{key}\n\n{inspect.cleandoc(topics[key])}",
                       source=PYTHON_DOCS)


# --- your own text files ---------------------------------------------------------------------

def expand_paths(spec: str) -> list[Path]:
    """Comma-separated paths or glob patterns -> the files they name, in sorted order."""
    paths = []
    for pattern in (part.strip() for part in spec.split(",") if part.strip()):
        matches = sorted(glob.glob(str(Path(pattern).expanduser()), recursive=True))
        if not matches:
            raise CourseError(f"No file matches {pattern!r}: set LLM_CORPUS to '{PYTHON_DOCS}', "
                              f"'{HUB_PREFIX}<dataset id>', or paths of your own text files.")
        paths.extend(Path(match) for match in matches if Path(match).is_file())
    return paths


def text_file_documents(paths: Iterable[Path]) -> Iterator[Document]:
    for path in paths:
        chunks = (chunk for chunk in paragraph_chunks(read_utf8(path)) if chunk.strip())
        for index, chunk in enumerate(chunks):
            yield Document(name=f"{path.name}#{index}", text=chunk, source=path.name)


def read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise CourseError(f"{path.name} is not UTF-8 text (byte {error.object[error.start]:#04x} "
                          f"at position {error.start}): save it as UTF-8, for example with "
                          f"`iconv -f latin1 -t utf-8`.") from None


def paragraph_chunks(text: str, size: int = TEXT_FILE_DOCUMENT_CHARS,
                     separators: tuple[str, ...] = ("\n\n", "\n", " ")) -> Iterator[str]:
    """Group the paragraphs of `text` into chunks of about `size` characters.

    A paragraph longer than `size` is grouped by its lines instead, and a line by its words: a
    file without blank lines still becomes many documents, not one that no split can divide.
    """
    separator, *finer = separators
    chunk: list[str] = []
    length = 0
    for part in text.split(separator):
        if len(part) > size and finer:
            if chunk:
                yield separator.join(chunk)
                chunk, length = [], 0
            yield from paragraph_chunks(part, size, tuple(finer))
            continue
        chunk.append(part)
        length += len(part)
        if length >= size:
            yield separator.join(chunk)
            chunk, length = [], 0
    if chunk:
        yield separator.join(chunk)


# --- Hugging Face hub datasets ---------------------------------------------------------------

@dataclass(frozen=True)
class HubCorpus:
    path: str
    config: str | None = None
    split: str = "train"
    clean: Callable[[Iterator[Document]], Iterator[Document]] | None = None   # per-corpus cleanup


def strip_gutenberg_license(text: str) -> str:
    """The book without Project Gutenberg's license header and footer.

    The header ends with a marker such as ``*** START OF THE PROJECT GUTENBERG EBOOK ... ***``
    (older books: ``*END*THE SMALL PRINT! ...*END*``); the footer starts with
    ``*** END OF THE PROJECT GUTENBERG EBOOK ...`` or ``End of the Project Gutenberg EBook``.
    A text with neither marker is returned whole.
    """
    header_end = list(GUTENBERG_HEADER_END.finditer(text))
    body = text[header_end[-1].end():] if header_end else text
    footer = GUTENBERG_FOOTER_START.search(body)
    return (body[:footer.start()] if footer else body).strip()


def has_gutenberg_markers(text: str) -> bool:
    return bool(GUTENBERG_HEADER_END.search(text) or GUTENBERG_FOOTER_START.search(text))


def gutenberg_books(documents: Iterator[Document]) -> Iterator[Document]:
    """The books without their license text; warns how many had no markers (kept whole)."""
    unmarked = 0
    try:
        for document in documents:
            unmarked += not has_gutenberg_markers(document.text)
            yield Document(document.name, strip_gutenberg_license(document.text), document.source)
    finally:  # also when the reader stops early, at its byte budget
        if unmarked:
            warnings.warn(f"{unmarked} Gutenberg book(s) had no license markers and were kept whole.")


GUTENBERG_HEADER_END = re.compile(
    r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT).*$"
    r"|^\*END\*THE SMALL PRINT!.*$", re.IGNORECASE | re.MULTILINE)
GUTENBERG_FOOTER_START = re.compile(
    r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)"
    r"|^End of (?:the )?Project Gutenberg'?s? E-?(?:book|text)", re.IGNORECASE | re.MULTILINE)

# hub corpora known by a short name; every one has a "text" column
HUB_CORPORA = {
    "fineweb-edu": HubCorpus("HuggingFaceFW/fineweb-edu", "sample-10BT"),
    "gutenberg": HubCorpus("manu/project_gutenberg", split="en", clean=gutenberg_books),
    "pg19": HubCorpus("emozilla/pg19", clean=gutenberg_books),
    "tinystories": HubCorpus("roneneldan/TinyStories"),
    "wikitext": HubCorpus("Salesforce/wikitext", "wikitext-103-raw-v1"),
}


def hub_corpus(name: str, data_files: str | None = None, skip: int = 0) -> Iterator[Document]:
    """The documents of a corpus of `HUB_CORPORA`, or of ``<dataset id>[:<config>]``, after
    the first `skip` of them.

    With `data_files` (the tests' fixtures), the rows come from those JSON lines files instead.
    """
    dataset_id, _, config = name.partition(":")
    corpus = HUB_CORPORA.get(name, HubCorpus(dataset_id, config or None))
    if data_files:
        documents = hub_documents("json", split="train", data_files=data_files, skip=skip)
    else:
        documents = hub_documents(corpus.path, corpus.config, corpus.split, skip=skip)
    return corpus.clean(documents) if corpus.clean else documents


def hub_documents(path: str, config: str | None = None, split: str = "train",
                  text_field: str = "text", data_files: str | list[str] | None = None,
                  skip: int = 0) -> Iterator[Document]:
    """Stream the rows of a dataset with `datasets`, one Document per row's `text_field`."""
    rows = stream_rows(path, config, split, data_files, columns=[text_field], skip=skip)
    for index, row in enumerate(rows, start=skip):
        yield Document(name=f"{path}#{index}", text=row[text_field], source=path)


def stream_rows(path: str, config: str | None = None, split: str = "train",
                data_files: str | list[str] | None = None, columns: list[str] = (),
                skip: int = 0) -> Iterator[dict]:
    """The rows of a dataset after the first `skip`, streamed: only as many are read as the
    caller consumes.

    `path` is a hub id (``roneneldan/TinyStories``) or a packaged loader (``json``,
    ``parquet``) with `data_files`: the tests read fixture files of the hub schemas that way.
    """
    import datasets

    try:
        dataset = datasets.load_dataset(path, config, split=split, data_files=data_files,
                                        streaming=True)
        rows = iter(dataset.skip(skip) if skip else dataset)
        first = next(rows, None)
    except Exception as error:  # network, authentication, offline mode, unknown id, ...
        raise CourseError(f"Could not load the dataset {path!r} ({library_reason(error)}): "
                          f"check the id and your connection (HF_HUB_OFFLINE must be unset), "
                          f"or use LLM_CORPUS={PYTHON_DOCS} to work offline.") from None
    if first is None:
        return
    missing = [column for column in columns if column not in first]
    if missing:
        raise CourseError(f"The dataset {path!r} has no column {missing[0]!r} "
                          f"(its columns: {', '.join(first)}).")
    yield first
    yield from rows
