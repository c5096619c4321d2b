"""The student edition: no solution text survives, exercises stay, and a student notebook still runs."""
import json
from pathlib import Path

import pytest

from t2ilab.student import NOTE, strip_solutions, write_student_edition

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
        assert student.count("{exercise}") == json.dumps(original).count("{exercise}")
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
    first = next(i for i, c in enumerate(notebook.cells) if "{exercise}" in c.source)
    notebook.cells = notebook.cells[:first]
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}}).execute()
    assert all(o.get("output_type") != "error" for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
