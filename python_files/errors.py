"""The one exception type the course raises for problems a learner can fix, and how entry
points show it: the sentence alone, without a traceback."""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable


class CourseError(Exception):
    """A problem with the learner's input or setup, explained in one sentence.

    Raised instead of letting a confusing traceback escape from deep inside a library:
    the message says what was wrong and what to do about it.
    """


def library_reason(error: BaseException, limit: int = 300) -> str:
    """A library's own error in one line: its type and the first line of its message (which often
    says what to do, such as the valid config names of a dataset), cut at `limit` characters."""
    first_line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    if len(first_line) > limit:
        first_line = first_line[:limit - 3] + "..."
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def sentence_on_error(main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a command's `main`: a CourseError ends it with its sentence on stderr and exit status 1.

    Under torchrun every process says its own sentence, the others prefixed with their rank: a
    process that fails alone (out of memory on one GPU, say) must be seen, not leave the others
    waiting for it in silence.
    """
    @functools.wraps(main)
    def run() -> None:
        try:
            main()
        except CourseError as error:
            rank = os.environ.get("RANK", "0")
            print(error if rank == "0" else f"rank {rank}: {error}", file=sys.stderr)
            sys.exit(1)
    return run
