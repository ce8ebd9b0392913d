"""The build: the compiled scanner is what runs, unless the twin is asked for."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokline
from tokline.engine import keys, native
from tokline.prompt import native as switch

STRICT = pytest.mark.skipif(os.environ.get("TOKLINE_STRICT_BUILD") != "1",
                            reason="only a strict build promises the extensions")
PURE = pytest.mark.skipif(os.environ.get("TOKLINE_PURE") != "1", reason="the pure leg only")


@STRICT
def test_strict_build_loads_the_extension() -> None:
    assert native.USE_EXTENSIONS
    from tokline.engine import _claude_c

    assert native.scan is _claude_c.scan
    assert Path(_claude_c.__file__).suffix in (".so", ".pyd")


@STRICT
@pytest.mark.parametrize("job", sorted(switch.MODULES))
def test_strict_build_loaded_every_compiled_module(job: str) -> None:
    """Each compiled module is built, and is what the switch gives (not the twin)."""
    name, _ = switch.MODULES[job]
    module = importlib.import_module(name)
    assert Path(module.__file__ or "").suffix in (".so", ".pyd")
    assert switch.compiled(job) is module
    assert switch.load(job) is module and switch.is_compiled(module)


@STRICT
def test_strict_build_wires_the_compiled_functions() -> None:
    from tokline.engine import _claude_c, _codex_c, _keys_c
    from tokline.prompt import _manifest_c

    assert native.scan_deferred is _claude_c.scan_deferred
    assert native.parse_iso_ms is _claude_c.parse_iso_ms
    assert native.codex_events is _codex_c.codex_events
    assert native.manifest_names_under is _manifest_c.names_under
    assert keys.key64 is _keys_c.key64


@PURE
def test_pure_switch_uses_the_twin() -> None:
    from tokline.engine import _claude_py

    assert not native.USE_EXTENSIONS
    assert native.scan is _claude_py.scan


@PURE
def test_pure_switch_uses_every_twin() -> None:
    from tokline.prompt import manifest

    assert native.scan_deferred is None and native.codex_events is None
    assert native.manifest_names_under is manifest.names_under
    assert keys.key64 is keys.key64_py
    for job, (_, pure) in switch.MODULES.items():
        assert switch.compiled(job) is None
        assert switch.load(job) is importlib.import_module(pure)


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


def test_every_compiled_module_has_its_source_and_a_shipped_stub() -> None:
    """ext/<leaf>.pyx builds <package>.<leaf>; its stub <leaf>.pyi sits beside it and is in
    the package data (mypy and editors read it; the wheel must carry it)."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    shipped = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    for name, _ in switch.MODULES.values():
        package, _, leaf = name.rpartition(".")
        assert (root / "ext" / f"{leaf}.pyx").is_file(), name
        assert root.joinpath(*package.split("."), f"{leaf}.pyi").is_file(), name
        assert "*.pyi" in shipped.get(package, []), name
