"""Throughput of stage 02 (clean, tokenize, write the token files) with 1 worker process and
with one per core, on the same text.

    python -m benchmarks.tokenization_speed [--megabytes 64] [--vocab-size 4096]

The text is the embedded corpus, repeated with a numbered line added to each copy so that no
copy is dropped as a duplicate. Both runs go through `prepare_pretraining_data`, one after
the other in this process, so the ratio compares them on the same machine under the same load.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from python_files.artifacts import Artifacts
from python_files.corpus import PYTHON_DOCS, load_corpus
from python_files.document import Document
from python_files.errors import sentence_on_error
from python_files.pretrain_data import prepare_pretraining_data
from python_files.tokenizer import TextTokenizer, save_tokenizer, train_tokenizer


def corpus_of(megabytes: float) -> list[Document]:
    documents = load_corpus(PYTHON_DOCS)
    size = sum(len(d.text.encode("utf-8")) for d in documents)
    copies = max(1, round(megabytes * 1e6 / size))
    return [Document(d.name, f"{d.text}\n\n(copy {copy})", d.source)
            for copy in range(copies) for d in documents]


def megabytes_per_second(documents, tokenizer, workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        data = prepare_pretraining_data(documents, tokenizer, Artifacts(Path(folder), "benchmark"),
                                        PYTHON_DOCS, tokenizer.vocab_size, val_fraction=0.01,
                                        workers=workers)
        seconds = time.perf_counter() - start
    return sum(split["bytes"] for split in data.meta["splits"].values()) / 1e6 / seconds


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=64.0)
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()

    documents = corpus_of(args.megabytes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        save_tokenizer(train_tokenizer((d.text for d in documents[:5000]), args.vocab_size), path)
        tokenizer = TextTokenizer.load(path)
    cores = os.cpu_count() or 1
    size = sum(len(d.text.encode("utf-8")) for d in documents) / 1e6
    one = megabytes_per_second(documents, tokenizer, workers=1)
    every = megabytes_per_second(documents, tokenizer, workers=cores)
    print(f"text: {size:.1f} MB, vocabulary: {args.vocab_size}, cores: {cores}")
    print(f"{'1 worker process:':<26}{one:8.2f} MB/s")
    print(f"{f'{cores} worker processes:':<26}{every:8.2f} MB/s")
    print(f"{'ratio all cores / one:':<26}{every / one:8.2f}x")


if __name__ == "__main__":
    main()
