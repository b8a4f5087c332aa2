"""The one error a declaration folder raises: every problem of every file, each one saying
which file, which field and what is wrong, so that one run of the loader is one round of fixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ia_continu.errors import IaContinuError


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in one declaration file."""

    file: str
    path: str  # field path in the file, e.g. ``features[2].type``; "" for the file itself
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.path}: {self.message}"
            if self.path
            else (f"{self.file}: {self.message}")
        )


class DeclarationError(IaContinuError):
    """One or more declaration files are invalid; ``problems`` lists each one.

    A configuration error found at start-up, not a request error: it keeps the base 500.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in model declarations"
        super().__init__("\n".join([head + ":", *(f"  {p}" for p in self.problems)]))
