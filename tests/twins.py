"""Each compiled module and its pure-Python twin, for the tests that hold them to the same
results (tokline/prompt/native.py lists the pairs and chooses between them at run time).

``pair(job)`` is one pytest param ``(compiled module or None, twin module)`` for the tests
that compare the two; they call ``built(compiled)``, which skips when the module was not
built.  ``each(job)`` is two params, the compiled module and the twin, for the tests that
check one behaviour of both.  Both legs of CI run them when the modules are built
(TOKLINE_PURE only changes what tokline itself uses); under TOKLINE_STRICT_BUILD=1 a
compiled module that does not import fails the collection instead of skipping.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import pytest

from tokline.prompt import native

# job -> (compiled module, twin module): claude, codex, keys, manifest
JOBS = native.MODULES

STRICT = os.environ.get("TOKLINE_STRICT_BUILD") == "1"


def compiled_module(job: str) -> ModuleType | None:
    """The job's compiled module, None when it was not built (an error when strict)."""
    try:
        return importlib.import_module(JOBS[job][0])
    except ImportError:
        if STRICT:
            raise
        return None


def pure_module(job: str) -> ModuleType:
    return importlib.import_module(JOBS[job][1])


def built(module: ModuleType | None) -> Any:
    """``module``, or a skip when the compiled module was not built."""
    if module is None:
        pytest.skip("the compiled module is not built")
    return module


def pair(job: str) -> list[Any]:
    """One param, ``(compiled, pure)``: the two modules of a job, compared by the test."""
    return [pytest.param(compiled_module(job), pure_module(job), id=job)]


def each(job: str) -> list[Any]:
    """Two params, the compiled module (skipped when not built) and the pure twin."""
    compiled = compiled_module(job)
    return [pytest.param(compiled, id=f"{job}-compiled",
                         marks=pytest.mark.skipif(compiled is None,
                                                  reason="the compiled module is not built")),
            pytest.param(pure_module(job), id=f"{job}-pure")]
