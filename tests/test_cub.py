"""The real CUB-200-2011 loader, on a tiny fixture written in the official layout (never downloads)."""
import pytest
import torch

from t2ilab.data.cub import CUB200, CUB_MD5, CUB_URL, crop_box, stated_attributes


def test_reads_the_official_layout(tmp_path, write_fixture):
    cub = write_fixture(tmp_path)
    train, test = CUB200(cub, "train", image_size=32), CUB200(cub, "test", image_size=64, crop=False)
    assert (len(train), len(test)) == (4, 2)
    assert train.paths[0].startswith("001.Species_1/") and test.species.tolist() == [0, 1]
    item = train[0]
    assert item.image.shape == (3, 32, 32) and -1 <= item.image.min() and item.image.max() <= 1
    assert item.species == 0 and train[2].species == 1  # classes are 1-based on disk
    assert len(item.captions) == 10 and item.caption in item.captions
    assert item.attributes == {"crown_color": "red", "bill_length": "short"}
    assert test[0].image.shape == (3, 64, 64)
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=2)))
    assert batch.image.shape == (2, 3, 32, 32)


def test_missing_files_are_named(tmp_path, write_fixture):
    cub = write_fixture(tmp_path)
    (cub / "bounding_boxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="bounding_boxes.txt") as err:
        CUB200(cub)
    assert CUB_URL in str(err.value) and CUB_MD5 in str(err.value)
    with pytest.raises(FileNotFoundError, match="text_c10"):
        CUB200(write_fixture(tmp_path / "other"), captions_root=tmp_path / "nowhere")


def test_crop_box_is_square_and_clipped():
    assert crop_box((40, 40, 20, 10), 200, 200) == (35, 30, 65, 60)
    assert crop_box((0, 0, 50, 50), 60, 60) == (0, 0, 60, 60)


def test_majority_vote_of_stated_attributes():
    assert stated_attributes(["a red crown", "a red crown", "a blue crown", "a long bill"]) == {
        "crown_color": "red", "bill_length": "long"}


def test_load_dataset_switch(tmp_path, monkeypatch, write_fixture):
    from t2ilab.data import load_dataset

    cub = write_fixture(tmp_path)
    monkeypatch.setenv("T2ILAB_CUB_ROOT", str(cub))
    assert len(load_dataset("cub", "train")) == 4
    assert len(load_dataset("synthbirds", "test")) == 5_794
    with pytest.raises(ValueError, match="'synthbirds' or 'cub'"):
        load_dataset("coco")
    monkeypatch.delenv("T2ILAB_CUB_ROOT")
    with pytest.raises(ValueError, match="T2ILAB_CUB_ROOT"):
        load_dataset("cub")


def _zero_box(path):
    lines = path.read_text().splitlines()
    lines[1] = "2 5.0 5.0 0.0 10.0"
    path.write_text("\n".join(lines) + "\n")


def _drop_last_line(path):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")


@pytest.mark.parametrize("damage, expected", [
    (lambda cub: _drop_last_line(cub / "image_class_labels.txt"), "image_class_labels.txt has no line for image id 6"),
    (lambda cub: _drop_last_line(cub / "train_test_split.txt"), "train_test_split.txt has no line for image id 6"),
    (lambda cub: _zero_box(cub / "bounding_boxes.txt"), "the box of image id 2 has zero or negative size"),
    (lambda cub: next((cub.parent / "text_c10").rglob("*.txt")).write_text(""), "captions file is empty"),
    (lambda cub: (cub / "images.txt").write_text("1 a.jpg extra\n"), r"images.txt, line 1: expected an image id and 1"),
    (lambda cub: next((cub / "images").rglob("*.jpg")).unlink(), "image missing: "),  # not mid-epoch
])
def test_a_half_populated_folder_fails_when_opened_naming_the_bad_file(tmp_path, damage, expected, write_fixture):
    cub = write_fixture(tmp_path)
    damage(cub)
    with pytest.raises((ValueError, FileNotFoundError), match=expected):
        CUB200(cub, "train")
