"""A named registry that refuses a second entry under one name (probe kinds, alert rules, channels).

One explicit list per kind of plug-in, filled at import by a decorator, so a
new kind is one module plus one import, and a name used twice is a bug said
at start-up, not a silent override.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def register(self, name: str, entry: T) -> T:
        if not name or name in self:
            raise RuntimeError(f"{self.what} {name!r} is unnamed or registered twice")
        self[name] = entry
        return entry
