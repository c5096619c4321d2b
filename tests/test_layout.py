"""How the package is laid out: modules small enough to read in one sitting (issue: one door per family)."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "t2ilab"
MAX_LINES = 400


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by layer): {long}"


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """The t2ilab modules `module` imports anywhere in its file, inside functions too."""
    import ast

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            target = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
            names = [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def test_no_import_cycle_counting_imports_inside_functions():
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {m: _imports(p, m, set(files)) for m, p in files.items()}
    graph = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}  # parent packages

    def cycle_from(start):  # depth-first search for a path back to `start`
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m))]
    assert not cycles, "import cycle: " + " -> ".join(cycles[0])


def test_the_package_imports_its_own_modules_at_the_top():
    """Imports inside functions only where they keep something out of the import: the CLI's start (cli.py) and
    heavy or optional third-party packages; t2ilab's own modules are imported at the top everywhere else."""
    import ast

    inside = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside += [f"{path.relative_to(PACKAGE)}:{sub.lineno}" for sub in ast.walk(node)
                           if isinstance(sub, ast.ImportFrom) and (sub.level or (sub.module or "").startswith("t2ilab"))]
    assert not inside, f"t2ilab modules imported inside functions: {inside}"
