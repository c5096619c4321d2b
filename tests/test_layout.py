"""How the package is laid out: modules small enough to read in one sitting (issue: one door per family)."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "t2ilab"
MAX_LINES = 400


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by layer): {long}"
