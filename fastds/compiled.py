"""Which modules run compiled, and refusing a compiled module older than its source.

setup.py compiles the worker's hot-path modules with Cython as they are (typed by the .pxd
beside the .py, where there is one), and the C-level modules of ext/ (declared for the others
in fastds/_ext/<name>.pxd), and records the digest of each source it compiled (source_digest:
the .py or .pyx and its .pxd) in fastds/_ext/compiled.json. A compiled module takes
precedence over its .py on import, so after an edit without a rebuild the old code would
run silently; an ext/ module built from an older .pxd than the modules that cimport it would
disagree with them on its C layout. So the master refuses to start and the test suite to run
until `pip install -e .` has rebuilt it (setup.py rebuilds an ext/ module whose digest
changed, which Cython alone does not notice when only its .pxd did).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

PACKAGE = Path(__file__).parent
REBUILD = "pip install -e ."


def source_of(package: Path, module: str) -> Path:
    """The source of a compiled module: fastds/x/y.py, or ext/<name>.pyx for fastds._ext.<name>
    (present in a checkout, not in an installed package)."""
    relative = Path(*module.split(".")[1:])
    if relative.parent == Path("_ext"):
        return package.parent / "ext" / (relative.name + ".pyx")
    return package / relative.with_suffix(".py")


def _source_and_binary(package: Path, module: str) -> tuple[Path, Path | None]:
    relative = Path(*module.split(".")[1:])
    source = source_of(package, module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        binary = package / relative.parent / (relative.name + suffix)
        if binary.exists():
            return source, binary
    return source, None


def source_digest(source: Path, package: Path = PACKAGE) -> str:
    """sha256 of a compiled module's source: its .py or .pyx, then the .pxd that declares it,
    if any (beside a .py; fastds/_ext/<name>.pxd for ext/<name>.pyx)."""
    digest = hashlib.sha256(source.read_bytes())
    declarations = package / "_ext" / (source.stem + ".pxd") if source.suffix == ".pyx" else source.with_suffix(".pxd")
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
        if binary is not None and source.exists() and source_digest(source, package) != recorded[module]:
            stale.append(module)
    return stale


def stale_message(stale: list[str]) -> str:
    return (f"compiled module(s) older than their source: {', '.join(stale)}; rebuild with `{REBUILD}`"
            " (the compiled copy would run instead of the edited source)")
