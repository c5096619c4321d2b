"""The real CUB-200-2011 loader, on a tiny fixture written in the official layout (never downloads)."""
import numpy as np
import pytest
import torch
from PIL import Image

from t2ilab.data.cub import CUB200, CUB_MD5, CUB_URL, crop_box, stated_attributes


def write_fixture(root, classes=("001.Red_Bird", "002.Blue_Bird"), per_class=3):
    """A CUB-shaped folder: 2 classes x 3 images, half train, ten captions each."""
    cub = root / "CUB_200_2011"
    (cub / "images").mkdir(parents=True)
    text = root / "text_c10"
    lines = {"images": [], "split": [], "labels": [], "boxes": []}
    rng = np.random.default_rng(0)
    image_id = 0
    for c, folder in enumerate(classes):
        (cub / "images" / folder).mkdir()
        (text / folder).mkdir(parents=True)
        color = "red" if c == 0 else "blue"
        for k in range(per_class):
            image_id += 1
            name = f"{folder.split('.')[1]}_{k:04d}_{image_id}"
            pixels = rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(cub / "images" / folder / f"{name}.jpg")
            captions = [f"this bird has a {color} crown and a short bill." for _ in range(9)]
            captions.append("a bird perched on a branch.")
            (text / folder / f"{name}.txt").write_text("\n".join(captions) + "\n")
            lines["images"].append(f"{image_id} {folder}/{name}.jpg")
            lines["split"].append(f"{image_id} {int(k < 2)}")
            lines["labels"].append(f"{image_id} {c + 1}")
            lines["boxes"].append(f"{image_id} 10.0 20.0 40.0 30.0")
    for key, file in [("images", "images.txt"), ("split", "train_test_split.txt"),
                      ("labels", "image_class_labels.txt"), ("boxes", "bounding_boxes.txt")]:
        (cub / file).write_text("\n".join(lines[key]) + "\n")
    return cub


def test_reads_the_official_layout(tmp_path):
    cub = write_fixture(tmp_path)
    train, test = CUB200(cub, "train", image_size=32), CUB200(cub, "test", image_size=64, crop=False)
    assert (len(train), len(test)) == (4, 2)
    item = train[0]
    assert item.image.shape == (3, 32, 32) and -1 <= item.image.min() and item.image.max() <= 1
    assert item.species == 0 and train[2].species == 1  # classes are 1-based on disk
    assert len(item.captions) == 10 and item.caption in item.captions
    assert item.attributes == {"crown_color": "red", "bill_length": "short"}
    assert test[0].image.shape == (3, 64, 64)
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=2)))
    assert batch.image.shape == (2, 3, 32, 32)


def test_missing_files_are_named(tmp_path):
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
