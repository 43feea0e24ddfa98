"""Which modules run compiled, and refusing a compiled module older than its source.

setup.py compiles the worker's hot-path modules with Cython as they are (typed by the .pxd
beside the .py, where there is one) and records the digest of each source it compiled
(source_digest: the .py and its .pxd) in fastds/_ext/compiled.json. A compiled module takes
precedence over its .py on import, so after an edit without a rebuild the old code would
run silently: the master refuses to start and the test suite to run until
`pip install -e .` has rebuilt it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

PACKAGE = Path(__file__).parent
REBUILD = "pip install -e ."


def _source_and_binary(package: Path, module: str) -> tuple[Path, Path | None]:
    relative = Path(*module.split(".")[1:])
    source = package / relative.with_suffix(".py")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        binary = package / relative.parent / (relative.name + suffix)
        if binary.exists():
            return source, binary
    return source, None


def source_digest(source: Path) -> str:
    """sha256 of a compiled module's source: its .py, then the .pxd that types it, if any."""
    digest = hashlib.sha256(source.read_bytes())
    declarations = source.with_suffix(".pxd")
    if declarations.exists():
        digest.update(declarations.read_bytes())
    return digest.hexdigest()


def stale_modules(package: Path = PACKAGE) -> list[str]:
    """Modules whose compiled copy was built from another version of their source."""
    manifest = package / "_ext" / "compiled.json"
    recorded = json.loads(manifest.read_text()) if manifest.exists() else {}
    stale = []
    for module in sorted(recorded):
        source, binary = _source_and_binary(package, module)
        if binary is not None and source.exists() and source_digest(source) != recorded[module]:
            stale.append(module)
    return stale


def stale_message(stale: list[str]) -> str:
    return (f"compiled module(s) older than their source: {', '.join(stale)}; rebuild with `{REBUILD}`"
            " (the compiled copy would run instead of the edited source)")
