"""Settings that say what values they take, and refuse the others in one sentence.

Every field of the course's config classes is declared with `setting(...)`, which states its
valid range where the field is written: at least 1, between 0 and 1, one of a few words. A
config checks all of them when it is made (`check_settings`, from its `__post_init__`), so a
wrong value stops the profile before any work starts, with a sentence that names the setting,
the value, and what would work::

    sft.eval_interval=0 is not a valid value: it must be at least 1.

A value that would make a stage do nothing, or make a number it prints false, is as wrong as
one that crashes: `eval_batches=0` would report a validation loss of 0 without reading a batch,
so it is refused like `n_head=0`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field, fields

from .errors import CourseError


@dataclass(frozen=True)
class Valid:
    """What values a setting takes: a range (`low`/`high`, each included unless `above`/`below`
    is set), or one of `choices`; `None` where `optional`; `pairs` of values each in the range."""
    low: float | None = None
    high: float | None = None
    above: bool = False            # low itself is not valid: more than low
    below: bool = False            # high itself is not valid: less than high
    choices: tuple = ()
    optional: bool = False
    pairs: bool = False

    def problem(self, value) -> str | None:
        """Why `value` is not valid, in words ("it must be at least 1"); None when it is."""
        if value is None:
            return None if self.optional else "it must be set"
        if self.choices:
            return None if value in self.choices else f"it must be one of {', '.join(map(str, self.choices))}"
        if self.pairs:
            if not (isinstance(value, tuple) and len(value) == 2):
                return f"it must be two numbers, each {self.range_words()}"
            return next((self.problem_of_number(part) for part in value if self.problem_of_number(part)), None)
        return self.problem_of_number(value)

    def problem_of_number(self, value) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"it must be a number {self.range_words()}"
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.below else value > self.high)
        return f"it must be {self.range_words()}" if too_low or too_high else None

    def range_words(self) -> str:
        low = None if self.low is None else f"{'more than' if self.above else 'at least'} {self.low:g}"
        high = None if self.high is None else f"{'less than' if self.below else 'at most'} {self.high:g}"
        if low and high:
            return f"{low} and {high}"
        return low or high or "of any size"


def setting(default=MISSING, **valid) -> dataclasses.Field:
    """A dataclass field with its valid values (the keywords of `Valid`) written beside it."""
    return field(default=default, metadata={"valid": Valid(**valid)})


class SettingError(CourseError):
    """A setting's value that its config refuses. `name` is the field's name; a profile adds
    its part ("sft.") in front, so the sentence names the setting as LLM_SETTINGS writes it."""

    def __init__(self, name: str, value, reason: str):
        self.name, self.value, self.reason = name, value, reason
        super().__init__(self.sentence())

    def sentence(self) -> str:
        return f"{self.name}={self.value!r} is not a valid value: {self.reason}."

    def within(self, part: str) -> "SettingError":
        """The same error, named as a setting of the profile's `part`."""
        return SettingError(f"{part}.{self.name}", self.value, self.reason)


def check_settings(config) -> None:
    """Refuse the first field of `config` whose value its declaration does not allow."""
    for declared in fields(config):
        valid, value = declared.metadata.get("valid"), getattr(config, declared.name)
        problem = valid.problem(value) if valid else None
        if problem is None and isinstance(value, float) and whole_numbers_only(str(declared.type)):
            problem = "it must be a whole number"   # a step count of 7.5, or a seed of 7.0, is not 7
        if problem:
            raise SettingError(declared.name, value, problem)


def whole_numbers_only(annotation: str) -> bool:
    """Whether a field declared as `annotation` ("int", "int | None") takes integers and no floats."""
    names = {part.strip().split("[")[0] for part in annotation.split("|")}
    return "int" in names and "float" not in names


def require(config, name: str, allowed: bool, reason: str) -> None:
    """A rule between settings (warmup_steps at most max_steps, say), refused as a SettingError
    of the setting `name`."""
    if not allowed:
        raise SettingError(name, getattr(config, name), reason)
