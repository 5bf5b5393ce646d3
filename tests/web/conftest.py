"""Fixtures every web test module shares."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """The async tests run on asyncio (the event loop granian gives the app, via uvloop)."""
    return "asyncio"
