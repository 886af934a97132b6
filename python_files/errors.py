"""The one exception type the course raises for problems a learner can fix."""


class CourseError(Exception):
    """A problem with the learner's input or setup, explained in one sentence.

    Raised instead of letting a confusing traceback escape from deep inside a library:
    the message says what was wrong and what to do about it.
    """
