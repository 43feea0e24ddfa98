"""Only the Cython extensions: every ext/<name>.pyx builds to fastds._ext.<name>.

FASTDS_DEBUG=1 builds with annotate (ext/<name>.html) and line tracing for coverage.
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTDS_DEBUG") == "1"

extensions = [
    Extension(
        f"fastds._ext.{pyx.stem}",
        [str(pyx)],
        define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    )
    for pyx in sorted(Path("ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["."],
        annotate=DEBUG,
        force=DEBUG,  # regenerate so the annotation and tracing always match the build
        compiler_directives={"language_level": 3, "linetrace": DEBUG, "embedsignature": True},
    ),
)
