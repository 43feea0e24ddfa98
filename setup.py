"""The compiled parts: every ext/<name>.pyx builds to fastds._ext.<name>, and the hot-path
modules in COMPILED_SOURCES are compiled by Cython as they are.

A compiled module's .py stays its one source (read, tested and run as Python when it is not
compiled); a .pxd beside it, where there is one, declares its classes as extension types with
typed fields and its hot methods as C functions. The built copy takes precedence on import.
fastds/_ext/compiled.json records the digest of each source (.py and .pxd) as built, so
fastds refuses to start (and the test suite to run) on a binary older than its source
(fastds/compiled.py). FASTDS_DEBUG=1 builds with annotate
(ext/<name>.html) and line tracing for coverage.
"""

import json
import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, str(Path(__file__).parent))
from fastds.compiled import source_digest  # noqa: E402 - the package being built, not an installed one

DEBUG = os.environ.get("FASTDS_DEBUG") == "1"

# The per-datagram path of a worker: ~30 % less CPU per call compiled (python -m bench.micro.call).
COMPILED_SOURCES = [
    "fastds/dispatch/keys.py",
    "fastds/dispatch/peers.py",
    "fastds/dispatch/pike.py",
    "fastds/dispatch/proxy.py",
    "fastds/dispatch/routes.py",
    "fastds/dispatch/rules.py",
    "fastds/dispatch/selector.py",
    "fastds/dispatch/trust.py",
    "fastds/dispatch/txn.py",
    "fastds/net/egress.py",
    "fastds/net/handoff.py",
    "fastds/net/hep.py",
    "fastds/net/pump.py",
    "fastds/shm/live.py",
    "fastds/sip/build.py",
    "fastds/sip/status.py",
]


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def write_manifest() -> None:
    manifest = {module_name(path): source_digest(Path(path)) for path in COMPILED_SOURCES}
    Path("fastds/_ext/compiled.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def extension(name: str, source: str) -> Extension:
    return Extension(name, [source], define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
                     extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"])


write_manifest()
setup(
    ext_modules=cythonize(
        [extension(f"fastds._ext.{pyx.stem}", str(pyx)) for pyx in sorted(Path("ext").glob("*.pyx"))]
        + [extension(module_name(path), path) for path in COMPILED_SOURCES],
        include_path=["."],
        build_dir="build/cython",  # the generated C stays out of the source tree
        nthreads=os.cpu_count() or 1,
        annotate=DEBUG,
        force=DEBUG,  # regenerate so the annotation and tracing always match the build
        compiler_directives={"language_level": 3, "linetrace": DEBUG, "embedsignature": True,
                             "annotation_typing": False},  # the .pxd beside a .py types it, not its hints
    ),
)
