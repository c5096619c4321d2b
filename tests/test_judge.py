"""The second attribute judge: its architecture reads attributes in the protocol's order, its training views,
and the protocol's report and flag of the two judges' gap."""
import pytest
import torch

from t2ilab.autoregressive import VQVAE
from t2ilab.data.attributes import BIRD_GROUPS
from t2ilab.metrics.judge import AttributeJudge, AttributeJudgeConfig
from t2ilab.metrics.protocol import JUDGES_AGREE, Judges, judges_disagree, second_judge_scores
from t2ilab.recipes import PRESETS
from t2ilab.recipes.evaluator import NO_SPECIES, degraded_views, random_crop
from t2ilab.recipes.image_tokenizer import TINY_TOKENIZER


def test_the_judge_predicts_one_value_index_per_group_in_protocol_order():
    torch.manual_seed(0)
    judge = AttributeJudge(AttributeJudgeConfig(channels=(4, 8, 8)))
    images = torch.rand(5, 3, 32, 32) * 2 - 1
    predicted = judge.predict(images, batch_size=2)
    assert predicted.shape == (5, len(BIRD_GROUPS))
    logits = judge.eval()(images)
    assert list(logits) == list(BIRD_GROUPS)
    assert torch.equal(predicted[:, 2], logits[list(BIRD_GROUPS)[2]].argmax(1))
    with pytest.raises(ValueError, match="attribute judge reads"):
        judge(torch.rand(2, 3, 64, 64))


def test_degraded_views_blur_noise_and_tokenize():
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    tokenizer = VQVAE(TINY_TOKENIZER).eval()
    views = degraded_views(images, tokenizer)
    assert set(views) == {"clean", "blurred", "noised", "tokenized"}
    assert torch.equal(views["clean"], images)
    for view in views.values():
        assert view.shape == images.shape and view.abs().max() <= 1
    assert views["blurred"].std() < images.std()  # blur removes variance of a random image
    assert (views["noised"] - images).abs().mean() > 0.03
    assert set(degraded_views(images)) == {"clean", "blurred", "noised"}


def test_random_crop_moves_whole_pixels_of_the_reflected_image():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop(images, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == images.shape
    assert torch.isin(out, images).all()


def test_second_judge_scores_and_the_disagreement_flag():
    judges = Judges(features=None, clip=None, train_features=None, evaluator=None)
    assert second_judge_scores(torch.zeros(1, 3, 32, 32), ["a bird"], judges) == {}
    torch.manual_seed(0)
    judge = AttributeJudge(AttributeJudgeConfig(channels=(4, 8, 8)))
    captions = ["a small bird with a red crown and blue wings", "this bird has a yellow breast"]
    scores = second_judge_scores(torch.rand(2, 3, 32, 32), captions, judges._replace(attribute_judge=judge))
    assert 0 <= scores["judge_attribute_accuracy"] <= 1 and scores["judge_attribute_accuracy_per_group"]
    assert judges_disagree({"attribute_accuracy": 0.5}) is None  # no second judge: nothing to compare
    assert judges_disagree({"attribute_accuracy": 0.5, "judge_attribute_accuracy": None}) is None
    assert judges_disagree({"attribute_accuracy": 0.50, "judge_attribute_accuracy": 0.50 + JUDGES_AGREE}) is None
    warning = judges_disagree({"attribute_accuracy": 0.53, "judge_attribute_accuracy": 0.476})
    assert warning and "+5.4 points" in warning and "evaluator-birds" in warning


def test_the_judges_recipe_trains_on_degraded_views():
    recipe = PRESETS["attribute-judge-birds"].tiny()
    job = recipe.build_job(steps=1)
    x, target = job.batch_fn(0, 0, 1)
    assert x.shape == (recipe.batch_size, 3, 32, 32) and target.shape == (recipe.batch_size, len(BIRD_GROUPS))
    assert PRESETS["attribute-judge-birds"].model_config.channels != PRESETS["evaluator-birds"].model_config.channels \
        or type(job.model).__name__ != "BirdEvaluator"  # its own architecture


def test_the_evaluator_can_train_on_the_judges_degraded_views_with_the_same_labels():
    clean = PRESETS["fid-birds"].tiny()
    degraded = clean.variant({"degraded_views": True})
    a, b = clean.build_job(steps=1).batch_fn(5, 0, 1), degraded.build_job(steps=1).batch_fn(5, 0, 1)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])  # the same birds, species and attributes
    assert not torch.equal(a[0], b[0]) and b[0].shape == a[0].shape  # three quarters of them degraded
    assert degraded.build_job(steps=1).card_extra["degraded_views"] is True
    assert "degraded_views" not in clean.build_job(steps=1).card_extra  # fid-birds' recipe is unchanged


def test_the_judges_train_on_birds_of_independent_attributes_without_a_species_label():
    recipe = PRESETS["evaluator-birds"].tiny()
    assert recipe.composition_birds > 0 and PRESETS["fid-birds"].composition_birds == 0
    job = recipe.build_job(steps=1)
    species = torch.cat([job.batch_fn(step, 0, 1)[1] for step in range(20)])
    assert (species == NO_SPECIES).any() and (species >= 0).any()  # both kinds of birds are drawn
    loss, logs = job.phases[0].step_fn(job.model, job.batch_fn(0, 0, 1))
    assert torch.isfinite(loss) and "attribute_acc" in logs
    assert job.card_extra["composition_birds"] == recipe.composition_birds
    assert PRESETS["attribute-judge-birds"].tiny().build_job(steps=1).card_extra["composition_birds"] > 0
