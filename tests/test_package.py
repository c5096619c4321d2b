"""The package as `pip install .` builds it: the wheel carries every released card and its packed weights, and an
installed (non-editable) t2ilab loads every model from outside the checkout."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the package's sources (a build in the checkout would leave build/ there)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT / "t2ilab", source / "t2ilab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out)], check=True, cwd=out)
    (path,) = out.glob("t2ilab-*.whl")
    return path


def test_the_wheel_holds_every_card_and_its_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p for p in (ROOT / "t2ilab" / "zoo" / "weights").glob("*")
                     if not p.name.startswith("."))  # not the card locks of `evaluate --write` (git-ignored)
    assert shipped
    missing = [p.name for p in shipped if f"t2ilab/zoo/weights/{p.name}" not in names]
    assert not missing, f"the wheel lacks {missing}"


def test_an_installed_t2ilab_loads_every_released_model_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "--quiet", "--target",
                    str(target)], check=True)
    script = ("import pathlib, t2ilab, t2ilab.zoo as z; "
              "assert pathlib.Path(t2ilab.__file__).is_relative_to(pathlib.Path(r'%s')); "
              "names = z.available(); [z.load(n) for n in names]; print(len(names))" % target)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == len(list((ROOT / "t2ilab" / "zoo" / "weights").glob("*.json")))
