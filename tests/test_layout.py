"""The layout rules of STYLE.md, checked (as asyncpg and uvloop run their linters as tests).

sip/ and dispatch/ are sans-IO: no sockets, no event loop, no environment, no store;
only net/ touches sockets; only config.py reads the environment; nothing imports procs/.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "fastds"
SANS_IO_FORBIDDEN = {"socket", "asyncio", "uvloop", "os.environ", "fastds.net", "fastds.procs", "fastds.store",
                     "fastds.config", "time"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr == "environ":
            names.add("os.environ")
    return names


def modules(*folders):
    for folder in folders:
        yield from sorted((PACKAGE / folder).rglob("*.py"))


def test_sip_and_dispatch_are_sans_io():
    for path in modules("sip", "dispatch"):
        found = {name for name in imports(path) if any(name == f or name.startswith(f + ".") for f in SANS_IO_FORBIDDEN)}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"


def test_only_config_reads_the_environment():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "config.py":
            assert "os.environ" not in imports(path), path.relative_to(ROOT)


def test_nothing_imports_procs_but_the_cli():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name != "procs" and path.name != "cli.py":
            assert not any(name.startswith("fastds.procs") for name in imports(path)), path.relative_to(ROOT)


def test_every_module_opens_with_a_docstring_saying_what_it_owns():
    for path in sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "ext").glob("*.pyx")):
        source = path.read_text()
        if path.suffix == ".py":
            assert ast.get_docstring(ast.parse(source)), path.relative_to(ROOT)
        else:  # a .pyx: its docstring follows the cython directives line
            assert '"""' in source[:600], path.relative_to(ROOT)


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "fastds", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_lists_every_package_and_data_file():
    """A non-editable `pip install .` ships only what pyproject.toml names."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in PACKAGE.rglob("__init__.py")}
    assert found == set(setuptools["packages"])
    for path in PACKAGE.rglob("*"):
        if path.is_file() and path.suffix in (".sql", ".html", ".pxd", ".pyi"):
            package = ".".join(path.parent.relative_to(ROOT).parts)
            assert f"*{path.suffix}" in setuptools["package-data"].get(package, []), path.relative_to(ROOT)
