"""tokline: what your AI coding assistants spent, and how much quota is left."""

from tokline._version import __version__

__all__ = ["__version__"]
