"""How the chapters read in the rendered book: code lines fit its content width, notebooks are stored without
outputs, every chapter opens with what it teaches and is in the table of contents."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
MAX_CODE_LINE = 88  # wider lines are cut off at the book's content width


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_lines_fit_the_page_and_outputs_are_not_stored(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} cell {i} has outputs"
        for line in "".join(cell["source"]).splitlines():
            assert len(line) <= MAX_CODE_LINE, f"{path.name} cell {i}: {len(line)} characters: {line.strip()[:60]}"


def test_every_chapter_says_what_it_teaches_and_is_listed():
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"book/{path.stem}" in toc, f"{path.name} is not in _toc.yml"
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert first.startswith("# "), f"{path.name} has no title"
        if path.stem != "beyond_the_laptop":
            assert "What this chapter teaches" in first and "Expected run time" in first, path.name
