"""The student edition of the course: every chapter with the exercise solutions removed and outputs cleared.

    python -m t2ilab.student [BOOK_FOLDER] [OUT_FOLDER]        (what `make student` runs)

Solutions are MyST `{solution}` directives (fenced with three or more backticks or colons) in markdown cells;
each is removed whole, with the blank lines around it, and a short note says where it was. Exercises stay.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution(?:-start)?\}")
NOTE = "*(The solution is in the instructor's edition.)*"


def strip_solutions(markdown: str) -> str:
    """Markdown without its `{solution}` directives (a fence opened by ```{solution} closes with the same fence)."""
    out, fence = [], None
    for line in markdown.split("\n"):
        if fence is None:
            match = _OPEN.match(line.strip())
            if match:
                fence = match.group("fence")
                out.append(NOTE)
                continue
            out.append(line)
        elif line.strip() == fence:
            fence = None
    if fence is not None:
        raise ValueError(f"a {{solution}} block opened with {fence} is never closed")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def student_notebook(notebook: dict) -> dict:
    """A copy of a notebook (nbformat JSON) with solutions removed from markdown cells and code outputs cleared."""
    cells = []
    for cell in notebook["cells"]:
        cell = dict(cell)
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            source = strip_solutions(source)
        elif cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        lines = source.split("\n")
        cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
        cells.append(cell)
    return dict(notebook, cells=cells)


def write_student_edition(book: Path, out: Path) -> list[Path]:
    """Every `book/*.ipynb` as a student notebook under `out`; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(book.glob("*.ipynb")):
        target = out / path.name
        target.write_text(json.dumps(student_notebook(json.loads(path.read_text())), indent=1, ensure_ascii=False)
                          + "\n")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    book = Path(args[0]) if args else Path("book")
    out = Path(args[1]) if len(args) > 1 else Path("_build/student")
    for path in write_student_edition(book, out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
