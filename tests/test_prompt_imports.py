"""tokline/prompt/ is the prompt's fast path: the standard library and its own modules only.

Every import is checked, function-local and TYPE_CHECKING ones included: one import of
the slow package on this path costs every prompt its start-up.  Siblings may be compiled
(e.g. tokline.prompt._manifest_c), so any tokline.prompt.* name is allowed as is.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PROMPT = Path(__file__).resolve().parents[1] / "tokline" / "prompt"
PACKAGE = "tokline.prompt"
# Known, named exceptions: (module, imported name) -> why.
ALLOWED_ELSEWHERE: dict[tuple[str, str], str] = {
    ("manifest", "tokline.sources"): "the registry names the variables that move each "
    "source's logs; it imports nothing beyond itself until a source is asked for "
    "(tests/test_rules.py)",
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package tokline.prompt (or above)
                base = PACKAGE.split(".")[: len(PACKAGE.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    return (top in sys.stdlib_module_names or module == PACKAGE
            or module.startswith(PACKAGE + "."))


@pytest.mark.parametrize("path", sorted(PROMPT.glob("*.py")), ids=lambda p: p.stem)
def test_prompt_modules_import_only_the_standard_library_and_siblings(path: Path) -> None:
    bad = [f"{path.name}:{line}: {module}" for line, module in imports_of(path)
           if not allowed(module) and (path.stem, module) not in ALLOWED_ELSEWHERE]
    assert not bad, "tokline/prompt/ imports beyond the standard library:\n" + "\n".join(bad)


def test_the_check_sees_what_it_must(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import os\nfrom . import lightjson\nfrom .statefiles import LINES\n"
                      "from tokline.prompt._manifest_c import x\n"
                      "def f():\n    import tokline.config\n    from ..ledger import store\n"
                      "if False:\n    from typing import Any\n")
    found = [module for _, module in imports_of(sample)]
    assert found == ["os", "tokline.prompt", "tokline.prompt.statefiles",
                     "tokline.prompt._manifest_c", "tokline.config", "tokline.ledger",
                     "typing"]
    assert [m for m in found if not allowed(m)] == ["tokline.config", "tokline.ledger"]
