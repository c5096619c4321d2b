"""The SynthBirds cache: damaged files are found (recorded sha256) and regenerated with a word, an unwritable
home fails before any rendering, stale temporaries of killed writes are removed, and the folder follows the umask."""
import os
import shutil
import time

import numpy as np
import pytest

from t2ilab.data import synthbirds


@pytest.fixture
def cache(tmp_path, synthbirds_data):
    """A copy of the user's cache under a temporary root (copying is much faster than rendering)."""
    source = synthbirds.cache_dir(0)
    target = synthbirds.cache_dir(0, tmp_path)
    shutil.copytree(source, target)
    synthbirds._VERIFIED.discard(target)
    return target


@pytest.fixture
def render(monkeypatch, synthbirds_data):
    """Counts renderings; a rendering returns the session's data at once (its bytes are what seed 0 renders)."""
    rendered = []
    monkeypatch.setattr(synthbirds, "generate", lambda *a, **k: rendered.append(1) or synthbirds_data)
    return rendered


def test_zeroed_images_are_detected_and_regenerated(cache, synthbirds_data, render, capsys):
    images = cache / "images.npy"
    with open(images, "r+b") as f:  # 20 MB of zeros in the middle: 800-odd black birds
        f.seek(40_000_000)
        f.write(bytes(20_000_000))
    data = synthbirds.load(0, cache.parent, progress=False)
    assert render == [1] and "does not match the sha256" in capsys.readouterr().err
    assert np.ascontiguousarray(data.images).tobytes() == np.ascontiguousarray(synthbirds_data.images).tobytes()


@pytest.mark.parametrize("damage", ["truncate", "delete_meta", "garbage_meta"])
def test_a_broken_cache_file_is_regenerated_not_a_numpy_traceback(cache, render, capsys, damage):
    if damage == "truncate":
        with open(cache / "images.npy", "r+b") as f:
            f.truncate(1000)
    elif damage == "delete_meta":
        (cache / "meta.json").unlink()
    else:
        (cache / "meta.json").write_text("{not json")
    data = synthbirds.load(0, cache.parent, progress=False)
    assert render == [1] and len(data.species) == 11788
    assert "damaged" in capsys.readouterr().err


def test_an_intact_cache_is_read_without_rendering(cache, render):
    synthbirds.load(0, cache.parent, progress=False)
    assert render == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_home_fails_before_rendering(tmp_path, render):
    home = tmp_path / "readonly"
    home.mkdir()
    home.chmod(0o500)
    with pytest.raises(PermissionError, match="T2ILAB_HOME"):
        synthbirds.load(0, home / "cache", progress=False)
    assert render == []


def test_an_unwritable_home_is_checked_first(tmp_path, render):
    """The same check, where the test runs as root: a file in the way of the cache folder."""
    blocker = tmp_path / "home"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="cannot write the SynthBirds cache"):
        synthbirds.load(0, blocker / "cache", progress=False)
    assert render == []


def test_stale_temporaries_are_removed_and_fresh_ones_kept(cache):
    stale = cache.parent / (cache.name + ".tmpold")
    fresh = cache.parent / (cache.name + ".tmpnew")
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "images.npy").write_bytes(b"x" * 100)
    old = time.time() - 2 * synthbirds.STALE_SECONDS
    os.utime(stale, (old, old))
    synthbirds.load(0, cache.parent, progress=False)
    assert not stale.exists() and fresh.exists()


def test_the_cache_folder_follows_the_umask(tmp_path):
    data = synthbirds.SynthBirdsData(images=np.zeros((1, 64, 64, 3), np.uint8), species=np.zeros(1, int),
                                     is_train=np.ones(1, bool), bbox=np.zeros((1, 4), int),
                                     captions=[["a bird"] * 10], nuisances={}, species_table=[])
    old = os.umask(0o022)
    try:
        synthbirds._write(data, tmp_path / "shared")
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o755
