"""SynthBirds-200: CUB's figures, determinism, species, captions and their parser."""
import hashlib
import json

import numpy as np
import pytest
import torch

from t2ilab.data import BIRD_GROUPS, SynthBirds, make_caption, parse_attributes, synthbirds
from t2ilab.data.birds import MIN_SPECIES_DISTANCE, make_species


def test_cub_figures(synthbirds_data):
    d = synthbirds_data
    assert d.images.shape == (11_788, 64, 64, 3) and d.images.dtype == np.uint8
    assert len(np.unique(d.species)) == 200
    assert int(d.is_train.sum()) == synthbirds.TRAIN_IMAGES == 5_994
    assert int((~d.is_train).sum()) == synthbirds.TEST_IMAGES == 5_794
    assert all(len(c) == 10 for c in d.captions)
    per_species = np.bincount(d.species)
    assert per_species.min() >= 58 and per_species.max() <= 59  # balanced like CUB (41-60 there)
    assert np.bincount(d.species[~d.is_train]).min() > 25  # every species is in the test split


def test_dataset_items():
    train, test = SynthBirds("train"), SynthBirds("test", image_size=64)
    assert (len(train), len(test)) == (5_994, 5_794)
    item = train[3]
    assert item.image.shape == (3, 32, 32) and item.image.dtype == torch.float32
    assert -1.0 <= item.image.min() and item.image.max() <= 1.0 and item.image.std() > 0.1
    assert item.caption in item.captions and len(item.captions) == 10
    assert set(item.attributes) == set(BIRD_GROUPS)
    assert item.attributes == train.species_table[item.species].attributes
    x, y, w, h = item.bbox
    assert 0 <= x and 0 <= y and x + w <= 32 and y + h <= 32 and w > 4 and h > 4
    assert test[0].image.shape == (3, 64, 64)
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4)))
    assert batch.image.shape == (4, 3, 32, 32) and len(batch.caption) == 4


def test_caption_choice_is_seeded():
    a = [SynthBirds("train", caption_seed=7)[0].caption for _ in range(1)]
    b = [SynthBirds("train", caption_seed=7)[0].caption for _ in range(1)]
    assert a == b
    ds = SynthBirds("train", caption_seed=1)
    assert len({ds[0].caption for _ in range(40)}) > 3  # a fresh caption on each access


def test_bad_arguments_fail_loudly():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        SynthBirds("val")
    with pytest.raises(ValueError, match="32 or 64"):
        SynthBirds("train", image_size=48)
    with pytest.raises(IndexError):
        SynthBirds("test")[5_794]


def test_same_seed_same_bytes(synthbirds_data):
    """Two independent renders of the same images agree byte for byte, and with the cached full set
    (so a batch's composition does not change an image); the sample spans the whole set, every species."""
    scenes, species, is_train, captions = synthbirds.sample_metadata(seed=0)
    assert captions == synthbirds_data.captions and (species == synthbirds_data.species).all()
    rows = np.arange(0, 11_788, 37)
    first, boxes = synthbirds.render_subset(scenes, rows, batch_size=64)
    second, _ = synthbirds.render_subset(scenes, rows[::-1].copy(), batch_size=100)
    assert first.tobytes() == second[::-1].tobytes()
    assert first.tobytes() == np.ascontiguousarray(synthbirds_data.images[rows]).tobytes()
    assert (boxes == synthbirds_data.bbox[rows]).all()
    meta = json.loads((synthbirds.cache_dir(0) / "meta.json").read_text())
    assert meta["images_sha256"] == hashlib.sha256(np.ascontiguousarray(synthbirds_data.images).tobytes()).hexdigest()


def test_other_seed_other_images(tmp_path):
    scenes0, *_ = synthbirds.sample_metadata(seed=0)
    scenes1, *_ = synthbirds.sample_metadata(seed=1)
    rows = np.arange(8)
    assert synthbirds.render_subset(scenes0, rows)[0].tobytes() != synthbirds.render_subset(scenes1, rows)[0].tobytes()


def test_species_are_distinct():
    species = make_species()
    codes = np.array([[BIRD_GROUPS[g].index(s.attributes[g]) for g in BIRD_GROUPS] for s in species])
    distance = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    np.fill_diagonal(distance, 99)
    assert distance.min() >= MIN_SPECIES_DISTANCE
    assert len({s.name for s in species}) == 200
    for j, g in enumerate(BIRD_GROUPS):  # every value of every group occurs
        assert set(codes[:, j]) == set(range(len(BIRD_GROUPS[g])))


def test_species_change_the_bird_and_nuisances_do_not():
    """Same scene, other species: the bird's pixels change a lot. Same bird, other background: they do not."""
    from t2ilab.data import birds

    table = make_species()
    rng = np.random.default_rng(0)
    ids = np.arange(0, 200, 25)
    scenes = birds.sample_scenes(ids, table, rng)
    images, _, masks = birds.render(scenes)
    swapped = birds.render(birds.sample_scenes(ids, table, np.random.default_rng(0)) | {
        f"attr_{g}": scenes[f"attr_{g}"][::-1].copy() for g in BIRD_GROUPS})[0]
    other_bg = dict(scenes, background=(scenes["background"] + 1) % 5, blobs=scenes["blobs"] * 0.5)
    rebackground = birds.render(other_bg)[0]
    for k, mask in enumerate(masks):
        bird, other = images[k][mask].astype(float), swapped[k][mask].astype(float)
        assert np.abs(bird - other).mean() > 20, f"species {ids[k]} and {ids[::-1][k]} look alike"
        assert np.median(np.abs(bird - rebackground[k][mask].astype(float))) == 0  # only edge pixels change


def test_parse_inverts_every_generated_caption(synthbirds_data):
    """On all 117,880 captions, parsing returns a subset of the true attributes with 3-6 groups."""
    table = synthbirds_data.species_table
    for s, captions in zip(synthbirds_data.species, synthbirds_data.captions):
        truth = table[s].attributes
        for c in captions:
            stated = parse_attributes(c)
            assert 3 <= len(stated) <= 6, c
            assert stated.items() <= truth.items(), (c, stated, truth)


def test_parse_recovers_exactly_what_was_said():
    rng = np.random.default_rng(123)
    species = make_species()
    for i in range(5000):
        text, stated = make_caption(species[i % 200].attributes, rng)
        assert parse_attributes(text) == stated, text


def test_parse_on_handwritten_text():
    assert parse_attributes("This small bird has a red crown, a grey breast and a short cone-shaped bill.") == {
        "size": "small", "crown_color": "red", "breast_color": "grey", "bill_length": "short", "bill_shape": "cone"}
    assert parse_attributes("its wings are barred and blue; its tail is forked") == {
        "wing_pattern": "barred", "wing_color": "blue", "tail_shape": "forked"}
    assert parse_attributes("a bird sitting on a branch") == {}


def test_caption_register(synthbirds_data):
    words = {w for cs in synthbirds_data.captions[:3000] for c in cs for w in c.replace(",", " ").split()}
    assert 60 <= len(words) <= 400
    templates = {c.split()[0] for cs in synthbirds_data.captions[:3000] for c in cs}
    assert len(templates) >= 5
