"""The rendered book checked as a reader sees it: every page opened in headless Chromium (scripts run, so MathJax
has typeset the maths), then read for what a person would notice.

    python tests/browser/check_book.py _build/html [--screenshots DIR]

A page fails on: no title or no top-level heading; an error, traceback or stderr block in an output cell; visible
raw LaTeX (MathJax did not typeset it); a Markdown table shown as raw `| --- |` text (an output rendered as
CommonMark); a `<Figure ...>` or `<Axes: ...>` repr line printed by a cell; a code or output line too long for the
book's ~690-px column, or a table with more columns than fit it (both cut at the right); an image whose file is
missing or empty; an image without alt text (the alt of an executed figure must describe it, not repeat its file
name); fewer figures than the chapter's figure cells. Screenshots are taken at the book's desktop width and at a
phone's. Chromium comes from Debian's `chromium` package (`tests/browser/install_chromium.sh`). Exit status 1 lists
every failure, page by page.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=5000", "--hide-scrollbars"]
HIDDEN = {"script", "style", "code", "pre", "noscript", "textarea", "mjx-assistive-mml", "math", "svg"}
# The book's text column is ~690 px wide: ~88 characters of its 13-px monospace, 10 table columns of short numbers.
MAX_CODE_CHARS = 88
MAX_TABLE_COLUMNS = 10
WIDTHS = {"desktop": "1280,4000", "phone": "412,4000"}
RAW_TABLE = re.compile(r"\|\s*:?-{3,}:?\s*\|")
ALIGNED = re.compile(r"\S {2,}\S.* {2,}\S")  # two gaps of 2+ spaces inside a line: columns
REPR_LINE = re.compile(r"^\s*<(Figure size|Axes|matplotlib\.)[^>]*>\s*$", re.M)


class Page(HTMLParser):
    """What the checks need from one page's DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title, self.h1, self.images, self.bad_outputs, self.visible = "", 0, [], [], []
        self.preformatted: list[tuple[bool, str]] = []  # <pre> blocks: (inside a cell's output?, text)
        self.table_columns: list[int] = []  # cells in the first row of each table
        self._stack: list[tuple[str, set[str]]] = []
        self._first_row: list[bool] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag == "img":
            self.images.append(a)
            return
        if tag in {"br", "hr", "meta", "link", "input", "source", "wbr"}:
            return
        self._stack.append((tag, classes))
        if tag == "h1":
            self.h1 += 1
        elif tag == "pre":
            self.preformatted.append((any("cell_output" in c for _, c in self._stack), ""))
        elif tag == "table":
            self.table_columns.append(0)
            self._first_row.append(True)
        elif tag in {"td", "th"} and self._first_row and self._first_row[-1]:
            self.table_columns[-1] += 1
        if "output" in classes and classes & {"stderr", "traceback", "error"}:
            self.bad_outputs.append(" ".join(sorted(classes)))

    def handle_endtag(self, tag):
        if tag == "tr" and self._first_row and self.table_columns[-1]:
            self._first_row[-1] = False
        elif tag == "table" and self._first_row:
            self._first_row.pop()
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                return

    def handle_data(self, data):
        tags = [t for t, _ in self._stack]
        if tags and tags[-1] == "title":
            self.title += data.strip()
        if "pre" in tags and self.preformatted:
            output, text = self.preformatted[-1]
            self.preformatted[-1] = (output, text + data)
        elif not HIDDEN & set(tags):
            self.visible.append(data)


def render(chromium: str, page: Path, screenshots: Path | None) -> str:
    """The page's DOM after its scripts ran; with `screenshots`, one PNG per width in WIDTHS (NAME-WIDTH.png)."""
    with tempfile.TemporaryDirectory() as profile:
        flags = CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]
        dom = subprocess.run(["timeout", "90", chromium, *flags, "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, check=True).stdout
        for width, size in WIDTHS.items() if screenshots is not None else ():
            shot = screenshots / f"{page.stem}-{width}.png"
            subprocess.run(["timeout", "90", chromium, *flags, f"--window-size={size}", f"--screenshot={shot}",
                            page.as_uri()], capture_output=True, check=True)
    return dom


def figure_cells(notebook: Path) -> int:
    """Code cells whose metadata gives their figure an alt text: each must show at least one image."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(1 for c in cells if c["metadata"].get("mystnb", {}).get("image", {}).get("alt"))


def check_page(html: Path, dom: str, notebook: Path | None) -> list[str]:
    page, problems = Page(), []
    page.feed(dom)
    if not page.title:
        problems.append("no <title>")
    if page.h1 == 0:
        problems.append("no top-level heading")
    for classes in page.bad_outputs:
        problems.append(f"an output cell shows an error or stderr block ({classes})")
    text = " ".join(page.visible)
    if "Traceback (most recent call last)" in text:
        problems.append("a traceback in the page text")
    for raw in ("\\(", "\\[", "$$"):
        if raw in text:
            at = text.index(raw)
            problems.append(f"raw LaTeX {raw!r} in visible text: ...{text[max(0, at - 40):at + 40]!r}")
    if RAW_TABLE.search(text):
        at = RAW_TABLE.search(text).start()
        problems.append(f"a Markdown table shown as raw text: ...{text[max(0, at - 60):at + 20]!r}")
    for output, block in page.preformatted:
        if REPR_LINE.search(block):
            problems.append(f"a cell prints a repr line: {REPR_LINE.search(block).group().strip()!r}")
        # code is cut at the column's edge; printed output wraps (_static/outputs.css), which spoils only lines
        # laid out in columns (a printed table)
        long = [line for line in block.splitlines() if len(line.rstrip()) > MAX_CODE_CHARS
                and (not output or ALIGNED.search(line.strip()))]
        if long:
            what = "printed table line(s) wider than the column: they wrap" if output else \
                "code line(s) cut at the column's edge"
            problems.append(f"{len(long)} {what} (over {MAX_CODE_CHARS} characters): {long[0][:60]!r}...")
    for columns in page.table_columns:
        if columns > MAX_TABLE_COLUMNS:
            problems.append(f"a table of {columns} columns (at most {MAX_TABLE_COLUMNS} fit the column)")
    figures = 0
    for img in page.images:
        src = img.get("src", "")
        if urlparse(src).scheme in {"http", "https", "data"}:
            continue
        target = (html.parent / unquote(urlparse(src).path)).resolve()
        if not target.is_file() or target.stat().st_size == 0:
            problems.append(f"broken image {src}")
        alt = (img.get("alt") or "").strip()
        if not alt:
            problems.append(f"image without alt text: {src}")
        elif "_images/" in src:
            figures += 1
            if alt == src or alt.endswith((".png", ".svg", ".jpg")):
                problems.append(f"figure whose alt text is its file name: {src}")
    if notebook is not None and figures < figure_cells(notebook):
        problems.append(f"{figures} figures shown, {figure_cells(notebook)} figure cells in {notebook.name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", default=str(ROOT / "_build" / "html"))
    parser.add_argument("--screenshots", help="a folder for one screenshot per page")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args(argv)
    html_root = Path(args.html).resolve()
    if not (html_root / "index.html").is_file():
        parser.error(f"{html_root} holds no built book (run `make book` first)")
    if not args.chromium:
        parser.error("no chromium on PATH: run tests/browser/install_chromium.sh")
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    pages = [html_root / "index.html"] + sorted((html_root / "book").glob("*.html"))
    failures = 0
    for html in pages:
        redirect = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', html.read_text(errors="replace"))
        if redirect:  # the root page only forwards to the first chapter, which is checked as itself
            target = html.parent / redirect.group(1)
            print(f"{'ok  ' if target.is_file() else 'FAIL'} {html.relative_to(html_root)} -> {redirect.group(1)}")
            failures += not target.is_file()
            continue
        notebook = ROOT / "book" / f"{html.stem}.ipynb"
        dom = render(args.chromium, html, shots)
        problems = check_page(html, dom, notebook if notebook.is_file() else None)
        failures += len(problems)
        print(f"{'FAIL' if problems else 'ok  '} {html.relative_to(html_root)}")
        for p in problems:
            print(f"     - {p}")
    print(f"{len(pages)} pages, {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
