"""Training time of the from-scratch BPE against the `tokenizers` trainer, same text and size.

    python -m benchmarks.bpe_training [--megabytes 2] [--vocab-size 4096]

Both trainers run one after the other in this process on the embedded corpus, so the ratio
compares them on the same machine under the same load.
"""

import argparse
import time

from python_files.bpe import train_bpe
from python_files.corpus import PYTHON_DOCS, load_corpus
from python_files.errors import sentence_on_error
from python_files.tokenizer import train_tokenizer


def seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=2.0)
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()

    texts = [d.text for d in load_corpus(PYTHON_DOCS, int(args.megabytes * 1e6))]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    scratch = seconds(train_bpe, texts, args.vocab_size)
    library = seconds(train_tokenizer, texts, args.vocab_size)
    print(f"text: {megabytes:.2f} MB, vocabulary: {args.vocab_size}")
    print(f"from scratch (python_files.bpe): {scratch:8.2f} s")
    print(f"tokenizers (Rust):               {library:8.2f} s")
    print(f"ratio from-scratch / tokenizers: {scratch / library:8.1f}x")


if __name__ == "__main__":
    main()
