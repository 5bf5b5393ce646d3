"""steadylink: a URL shortener that keeps its promise."""

__version__ = "0.1.0"

__all__ = ["__version__"]
