"""The build: the compiled scanner is what runs, unless the twin is asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokline
from tokline.engine import native


@pytest.mark.skipif(os.environ.get("TOKLINE_STRICT_BUILD") != "1",
                    reason="only a strict build promises the extension")
def test_strict_build_loads_the_extension() -> None:
    assert native.USE_EXTENSIONS
    from tokline import _scan

    assert native.scan is _scan.scan
    assert Path(_scan.__file__).suffix in (".so", ".pyd")


@pytest.mark.skipif(os.environ.get("TOKLINE_PURE") != "1", reason="the pure leg only")
def test_pure_switch_uses_the_twin() -> None:
    from tokline.engine import _claude_py

    assert not native.USE_EXTENSIONS
    assert native.scan is _claude_py.scan


def test_launcher_and_module_run() -> None:
    out = subprocess.run([sys.executable, "-m", "tokline", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"tokline {tokline.__version__}"


def test_every_subpackage_is_shipped() -> None:
    """A package missing from pyproject's list installs nowhere (CI runs the wheel)."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(root).parts)
             for p in (root / "tokline").rglob("__init__.py")}
    assert found <= listed, found - listed
