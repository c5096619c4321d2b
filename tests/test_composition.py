"""The unseen-combinations split, the judges' training birds and the lookup rows (issue: judges that read parts)."""
import numpy as np
import pytest
import torch

from t2ilab.data import BIRD_GROUPS, SynthBirds, parse_attributes
from t2ilab.data import composition as comp
from t2ilab.metrics.lookup import lookup, nearest_by_embedding, oracle_choice, stated_codes
from t2ilab.metrics.protocol import reference_set
from t2ilab.recipes.evaluator import judge_report, shortcut_gap

SMALL = 60


@pytest.fixture(scope="module")
def split():
    return comp.unseen_split(0, 32, size=SMALL)


def test_combination_index_is_numpys_mixed_radix():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, comp.RADIX, (500, len(comp.GROUPS)))
    assert (comp.combination_index(codes) == np.ravel_multi_index(tuple(codes.T), tuple(comp.RADIX))).all()
    assert comp.NUM_COMBINATIONS == 384_000
    with pytest.raises(ValueError, match="value indices"):
        comp.combination_index(np.array([[10, 0, 0, 0, 0, 0, 0, 0]]))


def test_unseen_captions_match_no_species_and_their_birds_are_reserved(split):
    known = comp.species_codes()
    for caption, stated, code in zip(split.captions, split.stated, split.attribute_index.numpy()):
        assert parse_attributes(caption) == stated
        assert len(comp.matching_species(stated, known)) == 0, caption
        assert all(BIRD_GROUPS[g][code[comp.GROUPS.index(g)]] == v for g, v in stated.items())  # bird has them all
    assert comp.is_reserved(split.attribute_index.numpy()).all()
    species_rows = {tuple(r) for r in known.tolist()}
    assert not any(tuple(r) in species_rows for r in split.attribute_index.tolist())


def test_matching_species_finds_a_species_own_attributes():
    table = comp.species_codes()
    attrs = {g: BIRD_GROUPS[g][int(table[17, j])] for j, g in enumerate(comp.GROUPS)}
    assert comp.matching_species(attrs, table).tolist() == [17]
    assert 17 in comp.matching_species({"crown_color": attrs["crown_color"]}, table)


def test_unseen_split_is_identical_for_a_seed(split):
    comp.unseen_split.cache_clear()
    again = comp.unseen_split(0, 32, size=SMALL)
    assert again.captions == split.captions and torch.equal(again.images, split.images)
    other = comp.unseen_split(1, 32, size=SMALL)
    assert other.captions != split.captions


def test_judge_birds_avoid_reserved_combinations_and_vary_every_group():
    birds = comp.independent_birds(300, 32, seed=0)
    codes = birds.attribute_index.numpy()
    assert birds.images.shape == (300, 3, 32, 32) and birds.images.dtype == torch.uint8
    assert not comp.is_reserved(codes).any()
    assert all(len(np.unique(codes[:, j])) == comp.RADIX[j] for j in range(len(comp.GROUPS)))
    assert torch.equal(comp.independent_birds(300, 32, seed=0).images, birds.images)  # same seed, same bytes
    assert not torch.equal(comp.independent_birds(300, 32, seed=1).attribute_index, birds.attribute_index)


def test_reference_set_refuses_unknown_split_and_too_many_items():
    with pytest.raises(ValueError, match="split must be one of"):
        reference_set(100, split="unknown")
    with pytest.raises(ValueError, match="unseen-combinations split"):
        reference_set(comp.UNSEEN_SPLIT_SIZE + 1, split="unseen")


def test_a_species_shortcut_classifier_fails_the_judge_report():
    """A judge that recognises the species and reads its attributes off it is exact on the species and wrong on
    unseen combinations; one that reads each part is exact on both."""
    n = 40
    seen, unseen = SynthBirds("test"), comp.unseen_split(0, 32, size=n)
    truth = {bytes(x.numpy()): code for x, code in zip(seen.images, seen.attribute_index)}
    truth |= {bytes(x.numpy()): code for x, code in zip(unseen.images, unseen.attribute_index)}

    def reader(images):  # the true codes of each image, looked up by its bytes (clean views only are exact)
        keys = [bytes(((x + 1) * 127.5).round().to(torch.uint8).numpy()) for x in images]
        return torch.stack([truth.get(k, torch.zeros(8, dtype=torch.long)) for k in keys])

    def shortcut(images):
        return torch.as_tensor(comp.species_shortcut(reader(images).numpy()))

    parts, species = judge_report(reader, n=n), judge_report(shortcut, n=n)
    assert parts["parts_seen_clean"] == parts["parts_unseen_clean"] == 1.0 and shortcut_gap(parts) == 0
    assert species["parts_seen_clean"] == 1.0
    assert species["parts_unseen_clean"] < 0.8 and species["shortcut_gap"] > 0.2


def test_lookup_oracle_picks_the_row_with_most_stated_attributes():
    groups = list(BIRD_GROUPS)
    codes = torch.zeros(4, len(groups), dtype=torch.long)
    red, hooked = BIRD_GROUPS["crown_color"].index("red"), BIRD_GROUPS["bill_shape"].index("hooked")
    codes[1, groups.index("crown_color")] = red
    codes[2, groups.index("crown_color")] = red
    codes[2, groups.index("bill_shape")] = hooked
    captions = ["this bird has a red crown and a hooked bill."]
    assert stated_codes(captions)[0, groups.index("crown_color")] == red
    for s in range(5):
        assert oracle_choice(captions, codes, torch.Generator().manual_seed(s)).tolist() == [2]
    codes[3] = codes[2]  # a tie: either of the two best rows, both drawn over seeds
    picks = {int(oracle_choice(captions, codes, torch.Generator().manual_seed(s))) for s in range(20)}
    assert picks == {2, 3}


def test_nearest_by_embedding_is_cosine_argmax():
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    images = torch.tensor([[0.0, 5.0], [3.0, 0.1], [1.0, 1.0]])
    assert nearest_by_embedding(text, images).tolist() == [1, 0]


def test_lookup_rows_return_training_images():
    train = SynthBirds("train")
    captions = reference_set(20, seed=0).captions
    g = torch.Generator().manual_seed(0)
    for name in ("lookup-random", "lookup-oracle"):
        images = lookup(name, train)(captions, g)
        assert images.shape == (20, 3, 32, 32)
        flat = train.image_tensor().flatten(1)
        assert all((flat == x.flatten()).all(1).any() for x in images)
    with pytest.raises(ValueError, match="unknown lookup"):
        lookup("lookup-everything", train)


def test_one_part_changed_changes_only_that_part():
    views = comp.one_part_changed("bill_shape", n=12)
    assert views.shape == (4, 12, 64, 64, 3)
    bill = comp.legible_pixels(views, 64)
    assert (bill > 0).all()  # every pair of bill shapes differs somewhere
    wing = comp.legible_pixels(comp.one_part_changed("wing_color", n=12), 64)
    assert wing.min() > bill.max()  # a wing is a bigger part than a bill
    assert comp.legible_pixels(views[:1].repeat(2, 0), 32).tolist() == [0.0]  # the same image: nothing differs
    with pytest.raises(ValueError, match="group must be one of"):
        comp.one_part_changed("size")
