"""Type aliases and small enums shared across parts."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """API key roles; each role can do everything the ones below it can."""

    VIEWER = 10
    EDITOR = 20
    DEPLOYER = 30
    ADMIN = 40

    @classmethod
    def parse(cls, name: str) -> Role:
        from steadylink.errors import InvalidInput

        try:
            return cls[name.strip().upper()]
        except KeyError:
            allowed = ", ".join(r.name.lower() for r in cls)
            raise InvalidInput(
                f"Unknown role {name!r}; use one of {allowed}.", field="role"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()
