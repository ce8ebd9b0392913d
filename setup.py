"""Only the extension list lives here; metadata is in pyproject.toml.

TOKLINE_NO_EXTENSIONS=1  build without the compiled scanner (pure-Python twin only).
TOKLINE_STRICT_BUILD=1   a failed extension build is an error instead of a fallback.
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

    return cythonize(
        [Extension("tokline._scan", ["ext/_scan.pyx"], extra_compile_args=["-O3"])],
        compiler_directives={"language_level": "3"},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
