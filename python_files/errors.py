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


def sentence_on_error(main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a command's `main`: a CourseError ends it with its sentence on stderr and exit status 1."""
    @functools.wraps(main)
    def run() -> None:
        try:
            main()
        except CourseError as error:
            if os.environ.get("RANK", "0") == "0":   # under torchrun, the first process speaks for all
                print(error, file=sys.stderr)
            sys.exit(1)
    return run
