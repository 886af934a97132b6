"""The unit of text every corpus yields: a `Document`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """One unit of text, with a name that says where it came from.

    For the Python documentation, `name` is the qualified name of the documented object
    (``json.dumps``); stage 05 asks questions about these objects.
    """

    name: str
    text: str
    source: str
