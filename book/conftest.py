"""nbval runs every chapter under `make test`; this hook keeps what it ran. A chapter whose code cells all ran and
passed is stored, outputs and run time, in the book's execution cache (`_build/.jupyter_cache`, the cache that
`execute_notebooks: cache` in `_config.yml` reads), so that `make book` right after renders those outputs instead
of running every chapter a second time. The cache matches a chapter by the source of its code cells (jupyter-cache),
so a chapter edited after the tests is executed again by the book build, and one that failed or was skipped here is
never stored."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[1] / "_build" / ".jupyter_cache"

_outputs: dict[Path, dict[int, list]] = defaultdict(dict)  # notebook -> {code cell number: its outputs}
_seconds: dict[Path, float] = defaultdict(float)
_incomplete: set[Path] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    cell_num = getattr(item, "cell_num", None)
    if cell_num is None or report.when not in ("setup", "call"):
        return  # not an nbval cell
    path = Path(str(item.fspath)).resolve()
    if report.when == "setup":
        if not report.passed:
            _incomplete.add(path)
        return
    if report.passed and item.test_outputs is not None:
        _outputs[path][cell_num] = item.test_outputs
        _seconds[path] += report.duration
    else:
        _incomplete.add(path)


def executed_notebook(path: Path, outputs: dict[int, list]):
    """The notebook at `path` with nbval's outputs in its code cells, or None if a code cell has none recorded."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if sorted(outputs) != list(range(len(code))):
        return None
    for number, cell in enumerate(code):
        cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs[number]]
        cell.execution_count = number + 1
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = number + 1
    return notebook


def pytest_sessionfinish(session, exitstatus):
    complete = {p: o for p, o in _outputs.items() if p not in _incomplete}
    if not complete:
        return
    try:
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn
    except ImportError:  # no jupyter-book here: nothing to hand over
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(CACHE))
    for path, outputs in complete.items():
        notebook = executed_notebook(path, outputs)
        if notebook is not None:
            cache.cache_notebook_bundle(CacheBundleIn(notebook, str(path),
                                                      data={"execution_seconds": _seconds[path]}),
                                        check_validity=False, overwrite=True)
