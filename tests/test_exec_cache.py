"""The hand-over from `make test` to `make book`: a chapter executed by nbval is stored so that the book build's
execution cache matches it (and so renders its outputs without running it again), and an edited chapter does not
match."""
import importlib.util
from pathlib import Path

import nbformat
import pytest

jupyter_cache = pytest.importorskip("jupyter_cache")
from jupyter_cache.base import CacheBundleIn  # noqa: E402

spec = importlib.util.spec_from_file_location("book_conftest", Path(__file__).resolve().parents[1] / "book" / "conftest.py")
book_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_conftest)


def chapter(tmp_path, second="print(1 + 1)"):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"),
                                               nbformat.v4.new_code_cell("x = 2"),
                                               nbformat.v4.new_code_cell(second)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, str(path))
    return path


def test_an_executed_chapter_is_matched_by_the_book_cache_and_an_edited_one_is_not(tmp_path):
    path = chapter(tmp_path)
    stream = nbformat.v4.new_output("stream", name="stdout", text="2\n")
    assert book_conftest.executed_notebook(path, {0: []}) is None  # a cell without outputs: not stored
    executed = book_conftest.executed_notebook(path, {0: [], 1: [stream]})
    assert executed.cells[2].outputs[0]["text"] == "2\n" and executed.cells[2].execution_count == 2
    cache = jupyter_cache.get_cache(str(tmp_path / "cache"))
    cache.cache_notebook_bundle(CacheBundleIn(executed, str(path), data={"execution_seconds": 1.5}),
                                check_validity=False, overwrite=True)
    record = cache.match_cache_notebook(nbformat.read(str(path), as_version=4))  # what myst-nb does
    assert record.data["execution_seconds"] == 1.5
    _, merged = cache.merge_match_into_notebook(nbformat.read(str(path), as_version=4))
    assert merged.cells[2].outputs[0]["text"] == "2\n"
    edited = chapter(tmp_path, second="print(3)")
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(str(edited), as_version=4))
