"""The one switch between each compiled module and its pure-Python twin.

Every compiled module (built from ext/*.pyx by setup.py) sits beside its twin and gives
the same results:

    tokline.engine._claude_c    tokline.engine._claude_py    Claude Code logs
    tokline.engine._codex_c     tokline.engine._codex_py     Codex rollouts
    tokline.engine._keys_c      tokline.engine.keys          ledger keys (key64_py)
    tokline.prompt._manifest_c  tokline.prompt.manifest      stat manifest checks
    tokline.ledger._writer_c    tokline.ledger._writer_py    usage rows into the ledger

TOKLINE_PURE=1 forces the twins.  TOKLINE_STRICT_BUILD=1 turns a missing compiled module
into an ImportError instead of a quiet fall back to the twin, so CI cannot pass on the
twins by accident.  Stdlib only and cheap to import (os and sys, both loaded at start-up
anyway): the prompt's up-to-date check (tokline/prompt/uptodate.py) uses it.  Nothing is
imported until a caller asks for it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

# Compiled modules are wanted (they may still be missing from a build that fell back).
USE_EXTENSIONS = os.environ.get("TOKLINE_PURE", "") not in ("1", "true", "yes")
STRICT = os.environ.get("TOKLINE_STRICT_BUILD") == "1"

# job -> (compiled module, its twin); tests/twins.py holds each pair to the same results
MODULES = {
    "claude": ("tokline.engine._claude_c", "tokline.engine._claude_py"),
    "codex": ("tokline.engine._codex_c", "tokline.engine._codex_py"),
    "keys": ("tokline.engine._keys_c", "tokline.engine.keys"),
    "manifest": ("tokline.prompt._manifest_c", "tokline.prompt.manifest"),
    "writer": ("tokline.ledger._writer_c", "tokline.ledger._writer_py"),
}


def _module(name: str) -> ModuleType:
    __import__(name)
    return sys.modules[name]


def compiled(job: str) -> ModuleType | None:
    """The compiled module of ``job`` (a key of MODULES), or None when its twin is to be
    used instead: asked for (TOKLINE_PURE), or not built (an ImportError under
    TOKLINE_STRICT_BUILD=1)."""
    if not USE_EXTENSIONS:
        return None
    try:
        return _module(MODULES[job][0])
    except ImportError:
        if STRICT:
            raise
        return None


def load(job: str) -> ModuleType:
    """The compiled module of ``job``, else its pure twin (see ``compiled``)."""
    module = compiled(job)
    return module if module is not None else _module(MODULES[job][1])


def is_compiled(module: ModuleType) -> bool:
    """Whether ``load`` gave the compiled module rather than the twin."""
    return any(module.__name__ == name for name, _ in MODULES.values())
