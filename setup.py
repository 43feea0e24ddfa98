"""The compiled parts: every ext/<name>.pyx builds to fastds._ext.<name>, and the hot-path
modules in COMPILED_SOURCES are compiled by Cython as they are.

A compiled module's .py stays its one source; a .pxd beside it, where there is one, declares
its classes as extension types with typed fields and its hot methods as C functions. The
built copy takes precedence on import. An ext/ module's declarations, for the modules that
cimport it, are fastds/_ext/<name>.pxd. fastds/_ext/compiled.json records the digest of
each source (.py or .pyx, and its .pxd) as built, so fastds refuses to start (and the test
suite to run) on a binary older than its source (fastds/compiled.py), and an ext/ module
whose .pxd alone changed is rebuilt. FASTDS_DEBUG=1 builds with annotate
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
    "fastds/dispatch/histogram.py",
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
    "fastds/procs/reports.py",
    "fastds/shm/live.py",
    "fastds/sip/build.py",
    "fastds/sip/status.py",
]


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


MANIFEST = Path("fastds/_ext/compiled.json")
EXT_SOURCES = sorted(str(pyx) for pyx in Path("ext").glob("*.pyx"))


def ext_module_name(pyx: str) -> str:
    return f"fastds._ext.{Path(pyx).stem}"


def digests() -> dict[str, str]:
    manifest = {module_name(path): source_digest(Path(path), Path("fastds")) for path in COMPILED_SOURCES}
    manifest.update((ext_module_name(pyx), source_digest(Path(pyx), Path("fastds"))) for pyx in EXT_SOURCES)
    return manifest


def changed_ext(manifest: dict[str, str]) -> list[str]:
    """The ext/ modules whose digest changed since the last build: Cython rebuilds a .pyx when
    it changes, not when only its .pxd in fastds/_ext/ does."""
    before = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    return [pyx for pyx in EXT_SOURCES if before.get(ext_module_name(pyx)) != manifest[ext_module_name(pyx)]]


def extension(name: str, source: str) -> Extension:
    return Extension(name, [source], define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
                     extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"])


def compile_all(changed: list[str]) -> list[Extension]:
    """Cython runs over every source; the ext/ modules in `changed` are regenerated whatever
    their timestamps say."""
    def cython(sources: list[str], name_of, force: bool) -> list[Extension]:
        if not sources:
            return []
        return cythonize(
            [extension(name_of(source), source) for source in sources],
            include_path=["."],
            build_dir="build/cython",  # the generated C stays out of the source tree
            nthreads=os.cpu_count() or 1,
            annotate=DEBUG,
            force=force or DEBUG,  # DEBUG: regenerate so the annotation and tracing always match the build
            compiler_directives={"language_level": 3, "linetrace": DEBUG, "embedsignature": True,
                                 "annotation_typing": False},  # the .pxd beside a .py types it, not its hints
        )

    unchanged = [pyx for pyx in EXT_SOURCES if pyx not in changed]
    return (cython(changed, ext_module_name, True) + cython(unchanged, ext_module_name, False)
            + cython(COMPILED_SOURCES, module_name, False))


current = digests()
extensions = compile_all(changed_ext(current))
MANIFEST.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")  # once Cython has run
setup(ext_modules=extensions)
