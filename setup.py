"""Build script for the compiled twin ``events_audit._formatting``.

Project metadata lives in pyproject.toml; this file only declares the
packages and the Cython extension.

``EVENTS_AUDIT_DEBUG=1`` builds the extension for debugging and profiling:
line tracing (``linetrace`` + ``CYTHON_TRACE``), ``-O0 -g`` and an annotated
HTML report.  Debug C sources are generated under ``build/cython-debug`` so
that switching modes never reuses a C file produced with other directives.
"""

from __future__ import annotations

import os

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

DEBUG = os.environ.get("EVENTS_AUDIT_DEBUG", "") == "1"

directives: dict[str, object] = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "embedsignature": True,
}
macros: list[tuple[str, str | None]] = []
cflags = ["-O2"]
build_dir: str | None = None

if DEBUG:
    directives["linetrace"] = True
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    cflags = ["-O0", "-g"]
    build_dir = os.path.join("build", "cython-debug")

extensions = [
    Extension(
        f"events_audit.{name}",
        [f"ext/{name}.pyx"],
        include_dirs=["ext"],
        define_macros=macros,
        extra_compile_args=cflags,
        # zlib's crc32 for the digest's line checksums (ext/core/line_checksums.pxi)
        libraries=["z"] if name == "_datapath" else [],
    )
    for name in ("_formatting", "_datapath")
]

setup(
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"events_audit": ["py.typed", "*.pyi"]},
    include_package_data=False,
    zip_safe=False,
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=DEBUG,
        build_dir=build_dir,
        force=DEBUG,
        quiet=not DEBUG,
    ),
)
