"""Only the extension list lives here; metadata is in pyproject.toml.

TOKLINE_NO_EXTENSIONS=1  build no compiled module (the pure-Python twins only).
TOKLINE_STRICT_BUILD=1   a failed extension build is an error instead of a fallback.

One compiled module per job, each beside its pure twin (tokline/prompt/native.py chooses):
ext/*.pyx are the modules, ext/*.pxd the C helpers they share (cdef inline, cimported).
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Fall back to the pure twin when the compiler is missing, unless the build is strict."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if os.environ.get("TOKLINE_STRICT_BUILD") == "1":
                raise
            print(f"tokline: building the scanner extension failed ({exc}); using the pure twin")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            if os.environ.get("TOKLINE_STRICT_BUILD") == "1":
                raise
            print(f"tokline: building {ext.name} failed ({exc}); using the pure twin")


def extensions() -> list[Extension]:
    if os.environ.get("TOKLINE_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize

    modules = [
        ("tokline.engine._claude_c", "ext/_claude_c.pyx"),  # twin tokline/engine/_claude_py.py
        ("tokline.engine._codex_c", "ext/_codex_c.pyx"),  # twin tokline/engine/_codex_py.py
        ("tokline.engine._keys_c", "ext/_keys_c.pyx"),  # twin tokline/engine/keys.py
        ("tokline.prompt._manifest_c", "ext/_manifest_c.pyx"),  # twin tokline/prompt/manifest.py
        ("tokline.ledger._writer_c", "ext/_writer_c.pyx"),  # twin tokline/ledger/_writer_py.py
    ]
    # No fused multiply-add: costs computed in C (ext/_claude_c.pyx) must be the very
    # doubles Python computes (tokline/accounting/pricing.py Price.cost).
    flags = ["-O3", "-ffp-contract=off"]
    return cythonize(
        [Extension(name, [source], extra_compile_args=flags) for name, source in modules],
        include_path=["ext"],
        compiler_directives={"language_level": "3"},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
