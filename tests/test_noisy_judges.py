"""The noise-aware judges of external guidance: scores against independent formulas, gradient signs, training."""
import torch
import torch.nn.functional as F

from t2ilab.clip import CLIPConfig, ImageTower
from t2ilab.data import BIRD_GROUPS
from t2ilab.data.captions import parse_attributes
from t2ilab.diffusion import get_schedule, gradient_guidance, predict_x0, q_sample
from t2ilab.diffusion.noisy import (NoisyAttributeClassifier, NoisyClassifierConfig, NoisyCLIPConfig, NoisyImageTower,
                                    caption_targets, classifier_score, clip_score)

CAPTIONS = ["this bird has a red crown and a short cone-shaped bill.",
            "a small bird with a blue breast, barred wings and a forked tail."]


def tiny_classifier():
    torch.manual_seed(0)
    return NoisyAttributeClassifier(NoisyClassifierConfig(channels=(8, 16), time_dim=16))


def test_caption_targets_are_the_parsed_attributes():
    targets, stated = caption_targets(CAPTIONS)
    for i, caption in enumerate(CAPTIONS):
        parsed = parse_attributes(caption)
        assert parsed, "the test captions must state attributes"
        for j, (group, values) in enumerate(BIRD_GROUPS.items()):
            assert bool(stated[i, j]) == (group in parsed)
            if group in parsed:
                assert values[int(targets[i, j])] == parsed[group]


def test_classifier_score_is_the_sum_of_stated_log_probabilities():
    model = tiny_classifier().eval()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 900])
    score = classifier_score(model, CAPTIONS)(x, t)
    logits = model(x, t)
    expected = torch.zeros(2)
    for i, caption in enumerate(CAPTIONS):
        for group, value in parse_attributes(caption).items():
            target = torch.tensor([BIRD_GROUPS[group].index(value)])
            expected[i] -= F.cross_entropy(logits[group][i:i + 1], target)  # log p = -cross-entropy
    torch.testing.assert_close(score, expected)


def test_classifier_guidance_moves_the_predicted_image_up_the_score():
    model = tiny_classifier().eval()
    schedule = get_schedule("linear")
    score = classifier_score(model, CAPTIONS)
    x_t, t = torch.randn(2, 3, 32, 32), torch.tensor([300, 300])
    zero_noise = lambda x, t: torch.zeros_like(x)  # noqa: E731
    plain = predict_x0(x_t, t, zero_noise(x_t, t), schedule)
    guided = predict_x0(x_t, t, gradient_guidance(zero_noise, score, 1e-2, schedule)(x_t, t), schedule)
    # the guided x0 differs from the plain one along +grad score: a small step raises the score at that t
    step = guided - plain
    with torch.enable_grad():
        x = x_t.clone().requires_grad_(True)
        grad = torch.autograd.grad(score(x, t).sum(), x)[0]
    assert (step * grad).flatten(1).sum(1).gt(0).all()
    assert (score(x_t + step * 0.1, t) > score(x_t, t)).all()


def test_noisy_tower_starts_as_the_clean_tower_at_every_t():
    torch.manual_seed(0)
    clean = ImageTower(CLIPConfig(image_channels=(8, 16, 16), embed_dim=12)).eval()
    tower = NoisyImageTower(NoisyCLIPConfig(channels=(8, 16, 16), embed_dim=12, time_dim=16)).eval()
    tower.load_clean_tower(clean)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    for t in (0, 500, 999):
        torch.testing.assert_close(tower(x, torch.full((3,), t)), clean(x))


def test_clip_score_is_the_cosine_and_guidance_raises_it():
    torch.manual_seed(0)
    tower = NoisyImageTower(NoisyCLIPConfig(channels=(8, 16), embed_dim=12, time_dim=16)).eval()
    text = F.normalize(torch.randn(2, 12), dim=-1)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([100, 700])
    score = clip_score(tower, text)
    torch.testing.assert_close(score(x, t), F.cosine_similarity(tower(x, t), text, dim=-1))
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        grad = torch.autograd.grad(score(xg, t).sum(), xg)[0]
    assert (score(x + 0.05 * grad / grad.flatten(1).norm(dim=1)[:, None, None, None], t) > score(x, t)).all()


def test_noisy_classifier_learns_attributes_of_noised_images():
    """30 steps on 16 fixed noisy images of two colours: the loss falls by half."""
    torch.manual_seed(0)
    model = tiny_classifier()
    schedule = get_schedule("linear")
    colours = torch.tensor([[1.0, -1, -1], [-1, -1, 1.0]])  # red, blue
    labels = torch.arange(16) % 2
    x0 = colours[labels][:, :, None, None].expand(16, 3, 32, 32)
    t = torch.randint(0, 400, (16,))
    x_t = q_sample(x0, t, torch.randn_like(x0), schedule)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x_t, t)["crown_color"][:, :2], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
