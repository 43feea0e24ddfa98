"""The layout rules of STYLE.md, checked (as asyncpg and uvloop run their linters as tests).

sip/ and dispatch/ are sans-IO: no sockets, no event loop, no environment, no store;
only net/ and procs/ open sockets; only config.py reads the environment; nothing imports
procs/ but the CLI; nothing a worker runs imports the store; only the prober makes the
shared-memory writer.
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


def module_path(name: str) -> Path | None:
    """The file of fastds module `name` (a package's __init__.py), None outside fastds."""
    if not name.startswith("fastds"):
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None  # a compiled extension (fastds._ext.*) or not a module


def reachable(start: str) -> set[str]:
    """Every fastds module `start` imports, directly or through others (imports inside
    functions count: a lazy import is still reachable)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        path = module_path(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        for imported in imports(path):
            todo.append(imported)
            parent = imported.rpartition(".")[0]
            while parent:  # importing fastds.a.b runs fastds.a's __init__ too
                todo.append(parent)
                parent = parent.rpartition(".")[0]
    return seen


def test_nothing_a_worker_runs_imports_the_store():
    """Workers read destinations from shared memory only (docs/architecture.md §1)."""
    found = reachable("fastds.procs.worker")
    assert "fastds.dispatch.proxy" in found and "fastds.shm.live" in found  # the walk does reach them
    assert not {name for name in found if name.startswith("fastds.store")}


def test_only_the_prober_makes_the_shared_memory_writer():
    makers = [path.relative_to(ROOT) for path in sorted(PACKAGE.rglob("*.py")) if "ShmWriter(" in path.read_text()
              and path.name != "layout.py"]
    assert makers == [Path("fastds/procs/prober.py")]


DEV_TOOLS = {PACKAGE / "loopback.py"}  # the tests' and benchmarks' launcher of fastds


def test_only_net_and_procs_open_sockets():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name not in ("net", "procs") and path not in DEV_TOOLS:
            assert "socket" not in imports(path), path.relative_to(ROOT)


def test_the_service_never_imports_the_dev_tools():
    tools = {".".join(path.relative_to(ROOT).with_suffix("").parts) for path in DEV_TOOLS}
    for path in sorted(PACKAGE.rglob("*.py")):
        assert not tools & imports(path), path.relative_to(ROOT)


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
        if path.is_file() and path.suffix in (".sql", ".html", ".pxd", ".pyi", ".json") and path.name != "compiled.json":
            package = ".".join(path.parent.relative_to(ROOT).parts)
            assert f"*{path.suffix}" in setuptools["package-data"].get(package, []), path.relative_to(ROOT)


def module_name_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def fastds_modules_imported(path: Path) -> set[str]:
    """The fastds modules `path` imports, at the top or inside a function, each resolved to
    a module file (`from fastds.api import metrics` is fastds.api.metrics)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            if module_path(name) is not None and not module_path(name).name == "__init__.py":
                found.add(name)
    return found - {module_name_of(path)}


ENTRY_POINTS = {"fastds.cli", "fastds.__main__"}  # they wire every folder together; nothing imports them


def import_graph() -> dict[str, set[str]]:
    return {module_name_of(path): fastds_modules_imported(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_imports_one_that_imports_it():
    graph = import_graph()
    loops = sorted({tuple(sorted((a, b))) for a, imported in graph.items() for b in imported if a in graph.get(b, ())})
    assert not loops, loops


def test_no_folder_imports_one_that_imports_it():
    """Between folders (fastds/ itself, api/, dispatch/, net/ ...): dependencies go one way.
    The package's own leaves (fastds/errors.py: imported everywhere, importing nothing) and the
    command-line entry point, which wires every folder, are left out."""
    graph = import_graph()
    leaves = {name for name, imported in graph.items() if not imported and name.count(".") == 1}

    def folder(name: str) -> str:
        return name.rpartition(".")[0]

    edges = {}
    for a, imported in graph.items():
        if a in ENTRY_POINTS:
            continue
        for b in imported - leaves:
            if folder(a) != folder(b):
                edges.setdefault((folder(a), folder(b)), (a, b))
    loops = sorted({tuple(sorted(pair)) for pair in edges if pair[::-1] in edges})
    assert not loops, [(pair, edges[pair], edges[pair[::-1]]) for pair in loops]
