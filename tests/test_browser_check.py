"""The rendered-book check (tests/browser/check_book.py) on pages written here: each fault it exists to catch is
caught, and a clean page passes. Chromium itself runs in `make check-book`, after the book is built."""
import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("check_book", Path(__file__).parent / "browser" / "check_book.py")
check_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_book)

CLEAN = """<html><head><title>A chapter</title></head><body><h1>A chapter</h1>
<p>Maths typeset: <mjx-container><svg></svg><mjx-assistive-mml>x</mjx-assistive-mml></mjx-container></p>
<pre>code may hold \\( and $$ freely</pre>
<div class="cell_output docutils container"><div class="output stream highlight-myst-ansi"><pre>ok</pre></div>
<img alt="A grid of sixteen birds" src="../_images/fig.png"></div></body></html>"""


@pytest.fixture
def site(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "fig.png").write_bytes(b"\x89PNG not empty")
    (tmp_path / "book").mkdir()
    return tmp_path / "book" / "chapter.html"


def test_a_clean_page_passes(site):
    assert check_book.check_page(site, CLEAN, None) == []
    prose = CLEAN.replace("<pre>ok</pre>", "<pre>" + "a long printed sentence " * 8 + "</pre>")
    assert check_book.check_page(site, prose, None) == []  # printed output wraps (_static/outputs.css)
    table = "<table><tr>" + "<th>c</th>" * 10 + "</tr>" + ("<tr>" + "<td>1</td>" * 10 + "</tr>") * 3 + "</table>"
    assert check_book.check_page(site, CLEAN.replace("<p>Maths", table + "<p>Maths"), None) == []


@pytest.mark.parametrize("fault, expected", [
    (("<title>A chapter</title>", "<title></title>"), "no <title>"),
    (("<h1>A chapter</h1>", "<h2>A chapter</h2>"), "no top-level heading"),
    (('class="output stream highlight-myst-ansi"', 'class="output stderr"'), "stderr"),
    (('<pre>ok</pre>', '<p>Traceback (most recent call last):</p>'), "traceback"),
    (("<p>Maths typeset:", "<p>Maths raw: \\(x_t\\)"), "raw LaTeX"),
    (('src="../_images/fig.png"', 'src="../_images/missing.png"'), "broken image"),
    (('alt="A grid of sixteen birds"', 'alt=""'), "without alt text"),
    (('alt="A grid of sixteen birds"', 'alt="../_images/fig.png"'), "alt text is its file name"),
    (("<p>Maths typeset:", "<p>| model | FID |\n| --- | ---: |\n| a | 1 |</p><p>"), "Markdown table shown as raw"),
    (("<pre>ok</pre>", "<pre>&lt;Axes: xlabel='step'&gt;</pre>"), "repr line"),
    (("<pre>ok</pre>", "<pre>&lt;Figure size 640x480 with 1 Axes&gt;</pre>"), "repr line"),
    (("<pre>code may hold", "<pre>" + "x" * 89 + "\ncode may hold"), "code line(s) cut at the column's edge"),
    (("<pre>ok</pre>", "<pre>" + "name    family    role    " * 4 + "</pre>"), "printed table line(s) wider"),
    (("<p>Maths typeset:", "<table><tr>" + "<th>c</th>" * 11 + "</tr><tr>" + "<td>1</td>" * 11
      + "</tr></table><p>"), "a table of 11 columns"),
])
def test_each_fault_is_reported(site, fault, expected):
    page = CLEAN.replace(*fault)
    assert page != CLEAN
    problems = check_book.check_page(site, page, None)
    assert any(expected in p for p in problems), problems


def test_a_chapter_showing_fewer_figures_than_its_figure_cells_fails(site, tmp_path):
    notebook = tmp_path / "chapter.ipynb"
    cell = {"cell_type": "code", "metadata": {"mystnb": {"image": {"alt": "a plot"}}}, "source": ""}
    notebook.write_text(json.dumps({"cells": [cell, cell]}))
    problems = check_book.check_page(site, CLEAN, notebook)
    assert problems == ["1 figures shown, 2 figure cells in chapter.ipynb"]


def test_the_comparison_tables_render_with_the_books_markdown_format_and_fit_the_column(site):
    """myst-nb renders a cell's Markdown output as CommonMark unless told otherwise: pipe tables then show as raw
    text. The book asks for GFM, whose tables the check accepts; the old 19-column table would still be cut."""
    import yaml
    from markdown_it import MarkdownIt

    from t2ilab import compare

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert config["sphinx"]["config"]["nb_render_markdown_format"] == "gfm"
    record = json.loads((root / "benchmarks" / "results" / "compare.json").read_text())
    tables = compare.markdown(record)

    def page(markdown: str) -> str:
        return CLEAN.replace("<p>Maths typeset:", markdown + "<p>Maths typeset:")

    as_commonmark = MarkdownIt("commonmark").render(tables)
    assert any("shown as raw text" in p for p in check_book.check_page(site, page(as_commonmark), None))
    as_gfm = MarkdownIt("commonmark").enable("table").render(tables)
    assert check_book.check_page(site, page(as_gfm), None) == []
    one_table = list(dict.fromkeys(c for view in compare.VIEWS.values() for c in view))  # the old layout
    wide = MarkdownIt("commonmark").enable("table").render(compare.table(record, one_table))
    assert any("a table of" in p for p in check_book.check_page(site, page(wide), None))
