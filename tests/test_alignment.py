"""Attribute accuracy, R-precision and the memorisation ratio against hand-computed cases and a naive loop."""
import pytest
import torch

from t2ilab.data import BIRD_GROUPS
from t2ilab.metrics import attribute_accuracy, corrupt, nearest_train_ratio, r_precision_from_embeddings
from t2ilab.metrics.alignment import draw_distractors


class FixedEvaluator:
    """Pretends to see the given attribute indices (B, groups) in any image."""

    def __init__(self, attrs):
        self.attrs = attrs

    def predict(self, images):
        return torch.zeros(len(images), 4), torch.zeros(len(images), dtype=torch.long), self.attrs


def index_of(**values):
    row = [0] * len(BIRD_GROUPS)
    for g, v in values.items():
        row[list(BIRD_GROUPS).index(g)] = BIRD_GROUPS[g].index(v)
    return row


def test_attribute_accuracy_counts_stated_attributes_only():
    seen = torch.tensor([index_of(crown_color="red", tail_shape="forked"), index_of(crown_color="blue")])
    captions = ["a bird with a red crown and a forked tail.", "a small bird with a red crown."]
    result = attribute_accuracy(torch.zeros(2, 3, 32, 32), captions, FixedEvaluator(seen))
    # image 0: crown right, tail right; image 1: crown wrong, size ("small" = index 0) right
    assert result.stated == 4 and result.accuracy == pytest.approx(3 / 4)
    assert result.per_group == {"crown_color": 0.5, "tail_shape": 1.0, "size": 1.0}
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        attribute_accuracy(torch.zeros(2, 3, 32, 32), captions[:1], FixedEvaluator(seen))


def test_r_precision_matches_a_naive_loop():
    torch.manual_seed(0)
    n, d = 40, 8
    image = torch.nn.functional.normalize(torch.randn(n, d), dim=-1)
    text = torch.nn.functional.normalize(image + 0.8 * torch.randn(n, d), dim=-1)
    owner = torch.arange(n)
    result = r_precision_from_embeddings(image, text, text, owner, num_distractors=9, seed=3)
    picks = draw_distractors(n, n, 9, seed=3, pool_owner=owner)
    wins = 0
    for i in range(n):
        true = float(image[i] @ text[i])
        wins += all(true > float(image[i] @ text[j]) for j in picks[i].tolist())
    assert result.r_precision == pytest.approx(wins / n)
    assert 0.0 < result.r_precision < 1.0
    assert (picks != owner[:, None]).all()  # an image's own caption is never its distractor


def test_r_precision_extremes():
    eye = torch.eye(10)
    assert r_precision_from_embeddings(eye, eye, eye, torch.arange(10), 9).r_precision == 1.0
    same = torch.ones(10, 4) / 2
    assert r_precision_from_embeddings(same, same, same, torch.arange(10), 9).r_precision == 0.0  # ties lose


def test_nearest_train_ratio():
    torch.manual_seed(0)
    train, test = torch.randn(500, 4), torch.randn(200, 4)
    assert nearest_train_ratio(test[:100], test, train) == pytest.approx(1.0, abs=0.25)
    assert nearest_train_ratio(train[:100] + 1e-3, test, train) < 0.01  # copies of training points
    assert nearest_train_ratio(test + 10, test, train) > 5


def test_corruptions():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(corrupt(x, "blur", 0), x)
    blurred = corrupt(x, "blur", 1.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(corrupt(flat, "blur", 2.0), flat, atol=1e-6)  # a blur preserves constants
    noisy = corrupt(x, "noise", 0.2)
    assert 0.1 < (noisy - x).std() < 0.25
    with pytest.raises(ValueError, match="'blur' or 'noise'"):
        corrupt(x, "jpeg", 1.0)


def test_oracle_r_precision_prefers_the_more_specific_true_caption():
    from t2ilab.metrics.alignment import oracle_r_precision

    truth = [{"crown_color": "red", "tail_shape": "fan", "size": "small"},
             {"crown_color": "blue", "tail_shape": "fan", "size": "large"}]
    # image 1's caption states only the fan tail, which is true of both birds
    captions = ["a small bird with a red crown and a fan-shaped tail.", "a bird with a fan-shaped tail."]
    # each image has one possible distractor: the other caption
    score = oracle_r_precision(truth, captions, captions, num_distractors=1, seed=0, pool_owner=torch.arange(2))
    # image 0: its own caption states more, so its PMI beats the tail-only caption; image 1: image 0's caption
    # is false of it (red crown), so its own caption wins too
    assert score == 1.0
    vague = ["a bird with a fan-shaped tail.", "a bird with a fan-shaped tail."]
    assert oracle_r_precision(truth, vague, vague, 1, 0, torch.arange(2)) == 0.0  # ties lose
