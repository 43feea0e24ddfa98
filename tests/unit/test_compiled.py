"""The hot-path modules run compiled, and a compiled module older than its source is refused."""

import ast
import hashlib
import importlib
import importlib.machinery
import json
from pathlib import Path

from fastds.compiled import PACKAGE, source_digest, stale_message, stale_modules

ROOT = Path(__file__).parents[2]


def compiled_sources() -> list[str]:
    """setup.py's COMPILED_SOURCES, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    found = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", "") == "COMPILED_SOURCES")
    return ast.literal_eval(found)


def test_every_hot_path_module_imports_compiled_from_the_build_of_its_source():
    modules = [path.removesuffix(".py").replace("/", ".") for path in compiled_sources()]
    modules += [f"fastds._ext.{pyx.stem}" for pyx in (ROOT / "ext").glob("*.pyx")]
    assert sorted(json.loads((PACKAGE / "_ext" / "compiled.json").read_text())) == sorted(modules)
    for module in modules:
        loaded = importlib.import_module(module)
        assert loaded.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), module
    assert stale_modules() == []


def _package(tmp_path: Path, source: bytes, built_from: bytes) -> Path:
    package = tmp_path / "fastds"
    (package / "_ext").mkdir(parents=True)
    (package / "dispatch").mkdir()
    (package / "dispatch" / "proxy.py").write_bytes(source)
    (package / "dispatch" / ("proxy" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"\x7fELF")
    (package / "_ext" / "compiled.json").write_text(
        json.dumps({"fastds.dispatch.proxy": hashlib.sha256(built_from).hexdigest()}))
    return package


def test_a_declaration_file_edited_after_the_build_is_named(tmp_path):
    package = _package(tmp_path, b"x = 1\n", b"x = 1\n")
    (package / "dispatch" / "proxy.pxd").write_bytes(b"cdef int x\n")
    assert stale_modules(package) == ["fastds.dispatch.proxy"]
    built = source_digest(package / "dispatch" / "proxy.py")
    (package / "_ext" / "compiled.json").write_text(json.dumps({"fastds.dispatch.proxy": built}))
    assert stale_modules(package) == []


def test_an_ext_module_whose_declarations_changed_is_named(tmp_path):
    """ext/<name>.pyx is declared for the modules that cimport it in fastds/_ext/<name>.pxd: a
    binary built before that file changed would disagree with them on its C layout."""
    package = tmp_path / "fastds"
    (package / "_ext").mkdir(parents=True)
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "timers.pyx").write_bytes(b"# the source\n")
    (package / "_ext" / "timers.pxd").write_bytes(b"cdef int slots\n")
    (package / "_ext" / ("timers" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"\x7fELF")
    built = source_digest(tmp_path / "ext" / "timers.pyx", package)
    (package / "_ext" / "compiled.json").write_text(json.dumps({"fastds._ext.timers": built}))
    assert stale_modules(package) == []
    (package / "_ext" / "timers.pxd").write_bytes(b"cdef int slots, lanes\n")
    assert stale_modules(package) == ["fastds._ext.timers"]


def test_a_binary_built_from_this_source_is_not_stale(tmp_path):
    assert stale_modules(_package(tmp_path, b"x = 1\n", b"x = 1\n")) == []


def test_a_source_edited_after_the_build_is_named(tmp_path):
    stale = stale_modules(_package(tmp_path, b"x = 2\n", b"x = 1\n"))
    assert stale == ["fastds.dispatch.proxy"]
    assert "fastds.dispatch.proxy" in stale_message(stale) and "pip install -e ." in stale_message(stale)


def test_a_source_that_is_not_compiled_is_not_stale(tmp_path):
    package = _package(tmp_path, b"x = 2\n", b"x = 1\n")
    next((package / "dispatch").glob("proxy.*.so")).unlink()
    assert stale_modules(package) == []
