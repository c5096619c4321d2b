"""The sanity rows of the evaluation protocol, with the released judges, on small N.

- real train vs real test is the floor;
- blur and noise of increasing strength raise FID-SB monotonically;
- one image per species: realistic (high precision) but no variety (very low recall and coverage);
- real images with their own captions are aligned; with shuffled captions they are not.
"""
import pytest
import torch

from t2ilab.data import SynthBirds
from t2ilab.metrics import corrupt, evaluate, fid, reference_set, score_images
from t2ilab.metrics.protocol import load_judges

N = 400
N_COVERAGE = 2000  # recall and coverage need several real images per species (200 species)


@pytest.fixture(scope="module")
def setup():
    judges = load_judges()
    test, train = SynthBirds("test"), SynthBirds("train")
    reference = reference_set(N, seed=0, test=test)
    sample = train.image_tensor(torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:N])
    return judges, train, reference, sample


def test_real_data_is_the_floor_and_corruption_is_monotone(setup):
    judges, _, reference, sample = setup
    real_features = judges.features.predict(reference.images)[0]
    floor = fid(real_features, judges.features.predict(sample)[0])
    for kind, levels in {"blur": [0.6, 1.2, 2.0], "noise": [0.05, 0.15, 0.3]}.items():
        scores = [fid(real_features, judges.features.predict(corrupt(sample, kind, s))[0]) for s in levels]
        assert floor < scores[0] < scores[1] < scores[2], (kind, floor, scores)


def test_one_image_per_species_has_precision_but_no_recall(setup):
    judges, train, _, _ = setup
    reference = reference_set(N_COVERAGE, seed=0)
    sample = train.image_tensor(torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:N_COVERAGE])
    first = {int(s): i for i, s in reversed(list(enumerate(train.species.tolist())))}
    collapsed = train.image_tensor(torch.tensor([first[int(s)] for s in reference.species]))
    m, real = score_images(collapsed, reference, judges), score_images(sample, reference, judges)
    assert m["precision"] > 0.9 and real["recall"] > 0.9 and real["coverage"] > 0.9
    assert m["recall"] < 0.1 and m["coverage"] < 0.7
    assert m["fid_sb"] > 3 * real["fid_sb"]
    assert m["nearest_train_ratio"] == pytest.approx(0.0, abs=1e-3)  # copies of training images


def test_alignment_of_real_pairs_and_shuffled_pairs(setup):
    judges, _, reference, _ = setup
    aligned = score_images(reference.images, reference, judges)
    shuffled = score_images(reference.images[torch.randperm(N, generator=torch.Generator().manual_seed(0))],
                            reference, judges)
    assert aligned["attribute_accuracy"] > 0.9 and shuffled["attribute_accuracy"] < 0.45
    assert aligned["r_precision"] > 0.6 and shuffled["r_precision"] < 0.1
    assert aligned["fid_sb"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_returns_every_metric(setup):
    judges, train, _, _ = setup

    def random_training_images(captions, generator):
        return train.image_tensor(torch.randint(len(train), (len(captions),), generator=generator))

    result = evaluate(random_training_images, n=200, seed=0, batch_size=64, parameters=0, progress=False)
    d = result.to_dict()
    assert d["n"] == 200 and d["images_per_second"] > 0 and d["threads"] >= 1
    assert 0 <= d["precision"] <= 1 and 0 <= d["coverage"] <= 1 and d["fid_sb"] > 0
    assert 0.1 < d["attribute_accuracy"] < 0.5  # real birds, but not the captioned ones
    again = evaluate(random_training_images, n=200, seed=0, batch_size=64, parameters=0, progress=False)
    assert again.fid_sb == result.fid_sb  # fixed captions and seeds: the same number twice


def test_on_unseen_combinations_real_birds_are_read_and_the_best_copy_falls_short(setup):
    """The composition split: its own real birds carry every stated attribute (the judges read them), while the
    training image with the most stated attributes (lookup-oracle) cannot have them all."""
    from t2ilab.metrics.lookup import lookup

    judges, train, _, _ = setup
    reference = reference_set(200, seed=0, split="unseen")
    real = score_images(reference.images, reference, judges)
    copies = score_images(lookup("lookup-oracle", train)(reference.captions, torch.Generator().manual_seed(0)),
                          reference, judges)
    assert real["attribute_accuracy"] > 0.95 and real["judge_attribute_accuracy"] > 0.95
    assert copies["attribute_accuracy"] < real["attribute_accuracy"] - 0.1
    assert copies["nearest_train_ratio"] == pytest.approx(0.0, abs=1e-3)
