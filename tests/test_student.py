"""The student edition: no solution text survives, exercises stay, and a student notebook still runs."""
import json
import re
from pathlib import Path

import pytest

from t2ilab.student import NOTE, plain_markdown, read_bibliography, strip_solutions, write_student_edition

BOOK = Path(__file__).resolve().parents[1] / "book"


def solution_bodies(notebook: dict) -> list[str]:
    """The text lines inside every {solution} block of a notebook's markdown cells."""
    bodies = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if line.startswith("```{solution}"):
                inside = True
            elif inside and line.strip() == "```":
                inside = False
            elif inside and len(line.strip()) > 20 and not line.startswith(":"):
                bodies.append(line.strip())
    return bodies


def test_no_solution_text_survives_and_exercises_stay(tmp_path):
    written = write_student_edition(BOOK, tmp_path)
    assert len(written) == len(list(BOOK.glob("*.ipynb"))) >= 4
    for path in written:
        original = json.loads((BOOK / path.name).read_text())
        student = path.read_text()
        bodies = solution_bodies(original)
        if "{exercise}" in json.dumps(original):
            assert bodies, path.name  # every chapter with exercises has solutions to hide
        assert "{solution}" not in student and not [b for b in bodies if json.dumps(b)[1:-1] in student], path.name
        assert "{exercise}" not in student  # plain Markdown: numbered headings
        assert student.count("#### Exercise ") == json.dumps(original).count("{exercise}")
        assert not re.search(r"\{(term|doc|cite|cite:t)\}`", student), path.name  # no MyST role is left
        assert (NOTE in student) == bool(bodies)
        assert all(not c.get("outputs") for c in json.loads(student)["cells"])


def test_strip_solutions_handles_fences_and_refuses_an_open_block():
    text = "A\n\n```{exercise}\n:label: e\nDo it.\n```\n\n````{solution} e\n:class: dropdown\nSecret\n````\n\nB"
    out = strip_solutions(text)
    assert "Secret" not in out and "Do it." in out and out.endswith("B") and NOTE in out
    with pytest.raises(ValueError, match="never closed"):
        strip_solutions("```{solution} e\nSecret")


def test_a_student_notebook_runs_up_to_its_first_exercise(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    path = tmp_path / "birds_captions_tokens.ipynb"  # the first chapter, and the quickest
    write_student_edition(BOOK, tmp_path)
    notebook = nbformat.read(path, as_version=4)
    first = next(i for i, c in enumerate(notebook.cells) if "#### Exercise " in c.source)
    notebook.cells = notebook.cells[:first]
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}}).execute()
    assert all(o.get("output_type") != "error" for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def test_plain_markdown_turns_roles_into_text_links_and_citations(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text("@inproceedings{a2020,\n  title = {T},\n  author = {Doe, Jane and Roe, Rick and Poe, Ed},\n"
                   "  year = {2020}\n}\n@misc{b2021,\n  author = {Ada Lovelace},\n  year = {2021}\n}\n")
    bibliography = read_bibliography(bib)
    assert bibliography == {"a2020": "Doe et al., 2020", "b2021": "Lovelace, 2021"}
    titles = {"dfgan": "One generator, deep fusion"}
    text = ("A {term}`GAN` and {term}`affine transforms <affine transformation>`, see {doc}`dfgan` and "
            "{doc}`the game <dfgan>` and {doc}`missing`; {cite}`a2020,b2021`; {cite:t}`b2021` showed it.\n\n"
            "```{exercise}\n:label: x\n\nDo it.\n```\n\n```{exercise} Harder\n:label: y\n\nAgain.\n```")
    out = plain_markdown(text, titles, bibliography, exercises=2)
    assert out.startswith("A GAN and affine transforms, see [One generator, deep fusion](dfgan.ipynb) and "
                          "[the game](dfgan.ipynb) and missing; (Doe et al., 2020; Lovelace, 2021); "
                          "Lovelace (2021) showed it.")
    assert "#### Exercise 3\n\nDo it." in out and "#### Exercise 4: Harder\n\nAgain." in out
    assert ":label:" not in out and "```" not in out
    with pytest.raises(ValueError, match="not in the bibliography: nobody"):
        plain_markdown("{cite}`nobody`", titles, bibliography)
    with pytest.raises(ValueError, match="never closed"):
        plain_markdown("```{exercise}\nDo it.", titles, bibliography)


def test_instructors_table_lists_every_exercise_in_book_order():
    """The instructors' exercise table names each exercise label once, in the order of the table of contents, which
    is also the student edition's numbering."""
    root = BOOK.parent
    listed = re.findall(r"`([a-z]+-ex-[a-z0-9-]+)`", (BOOK / "instructors.md").read_text())
    in_book = []
    for name in re.findall(r"file: book/(\w+)", (root / "_toc.yml").read_text()):
        path = BOOK / f"{name}.ipynb"
        if path.exists():
            for cell in json.loads(path.read_text())["cells"]:
                in_book += re.findall(r":label: ([a-z]+-ex-[a-z0-9-]+)", "".join(cell["source"]))
    assert listed == in_book
