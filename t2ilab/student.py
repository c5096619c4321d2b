"""The student edition of the course: every chapter with the exercise solutions removed and outputs cleared, in
plain Markdown that JupyterLab renders without a MyST plugin.

    python -m t2ilab.student [BOOK_FOLDER] [OUT_FOLDER]        (what `make student` runs)

Solutions are MyST `{solution}` directives (fenced with three or more backticks or colons) in markdown cells;
each is removed whole, with the blank lines around it, and a short note says where it was. Exercises stay, as
numbered headings. The MyST roles the chapters use become plain Markdown: glossary terms their text, chapter
references links to the chapter's notebook, citations "(Author et al., year)" from `references.bib`.
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


_ROLE = re.compile(r"\{(term|doc|cite|cite:t|cite:p|math)\}`([^`]*)`")
_EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}(?P<title>[^\n]*)$")
_BIB_ENTRY = re.compile(r"@\w+\{(?P<key>[^,\s]+),(?P<body>.*?)\n\}", re.S)
_BIB_FIELD = re.compile(r"(?P<name>\w+)\s*=\s*\{(?P<value>(?:[^{}]|\{[^{}]*\})*)\}")


def read_bibliography(path: Path) -> dict[str, str]:
    """{key: "Author et al., year"} for every entry of a BibTeX file (surnames: "Last, First" or "First Last")."""
    out = {}
    for entry in _BIB_ENTRY.finditer(path.read_text()):
        fields = {m.group("name").lower(): m.group("value") for m in _BIB_FIELD.finditer(entry.group("body"))}
        names = [n.strip().replace("{", "").replace("}", "") for n in fields.get("author", "").split(" and ")]
        surnames = [n.split(",")[0].strip() if "," in n else n.split()[-1] for n in names if n]
        who = (surnames[0] if len(surnames) == 1 else " and ".join(surnames) if len(surnames) == 2
               else f"{surnames[0]} et al." if surnames else entry.group("key"))
        out[entry.group("key")] = f"{who}, {fields.get('year', 'n.d.')}"
    return out


def plain_markdown(markdown: str, titles: dict[str, str], bibliography: dict[str, str], exercises: int = 0) -> str:
    """MyST roles and `{exercise}` fences -> Markdown that any renderer shows: `titles` maps a chapter's name to its
    title (a link to `name.ipynb` is made for those), `bibliography` a citation key to "Author, year"; exercises
    are numbered on from `exercises`, the number of them earlier in the chapter."""
    def role(match: re.Match) -> str:
        kind, text = match.groups()
        label, _, target = text.partition(" <")
        target = target.rstrip(">") if target else ""
        if kind == "term":
            return label
        if kind == "math":
            return f"${text}$"
        if kind == "doc":
            name = target or label
            shown = label if target else titles.get(name, name)
            return f"[{shown}]({name}.ipynb)" if name in titles else shown
        keys = [k.strip() for k in text.split(",")]
        missing = [k for k in keys if k not in bibliography]
        if missing:
            raise ValueError(f"citation keys not in the bibliography: {', '.join(missing)}")
        if kind == "cite:t":
            return ", ".join(f"{who} ({year})" for who, year in (bibliography[k].rsplit(", ", 1) for k in keys))
        return "(" + "; ".join(bibliography[k] for k in keys) + ")"

    out, fence, number = [], None, exercises
    for line in markdown.split("\n"):
        match = _EXERCISE.match(line.strip()) if fence is None else None
        if match:
            fence, number = match.group("fence"), number + 1
            title = match.group("title").strip()
            out.append(f"#### Exercise {number}" + (f": {title}" if title else ""))
        elif fence is not None and line.strip().startswith(":label:"):
            continue
        elif fence is not None and line.strip() == fence:
            fence = None
        else:
            out.append(line)
    if fence is not None:
        raise ValueError(f"an {{exercise}} block opened with {fence} is never closed")
    return _ROLE.sub(role, "\n".join(out))


def chapter_titles(book: Path) -> dict[str, str]:
    """{notebook name: its first "# " heading} for every chapter notebook of the book."""
    titles = {}
    for path in sorted(book.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            heading = re.search(r"^# (.+)$", source, re.M) if cell["cell_type"] == "markdown" else None
            if heading:
                titles[path.stem] = heading.group(1).strip()
                break
    return titles


def student_notebook(notebook: dict, titles: dict[str, str] | None = None,
                     bibliography: dict[str, str] | None = None) -> dict:
    """A copy of a notebook (nbformat JSON) with solutions removed from markdown cells, MyST turned into plain
    Markdown (`plain_markdown`; `titles` and `bibliography` as there) and code outputs cleared."""
    cells, exercises = [], 0
    for cell in notebook["cells"]:
        cell = dict(cell)
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            source = plain_markdown(strip_solutions(source), titles or {}, bibliography or {}, exercises)
            exercises += len(re.findall(r"^#### Exercise \d+", source, re.M))
        elif cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        lines = source.split("\n")
        cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
        cells.append(cell)
    return dict(notebook, cells=cells)


def write_student_edition(book: Path, out: Path) -> list[Path]:
    """Every `book/*.ipynb` as a student notebook under `out` (citations from `book/references.bib`); returns the
    written paths."""
    out.mkdir(parents=True, exist_ok=True)
    titles, bibliography = chapter_titles(book), read_bibliography(book / "references.bib")
    written = []
    for path in sorted(book.glob("*.ipynb")):
        target = out / path.name
        notebook = student_notebook(json.loads(path.read_text()), titles, bibliography)
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
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
