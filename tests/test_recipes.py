"""The family interface: every preset trains (a step lowers its loss), every generator draws end to end on a tiny
config, sampling options are typed and checked, and the registry is the only door to model classes."""
import dataclasses

import pytest
import torch

from t2ilab import zoo
from t2ilab.recipes import PRESETS, generators, get_preset, model_classes, option_fields, parse_options
from t2ilab.recipes.diffusion import DiffusionSampling, GuidedSampling

ROLES = {"generator", "judge", "tokenizer", "text encoder", "evaluator"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_training_step_lowers_the_loss_on_a_fixed_batch(name):
    recipe = PRESETS[name].tiny()
    job = recipe.build_job(steps=20)
    batch = job.batch_fn(0, 0, 1)
    model = job.model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():  # diffusion losses draw t and noise, dropout draws masks: the same draws at every evaluation
        torch.manual_seed(1)
        return sum(phase.step_fn(model, batch)[0] for phase in job.phases)

    first = loss().item()
    for _ in range(20):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.9 * first, name


@pytest.mark.parametrize("name", generators())
def test_text_to_image_runs_end_to_end_on_a_tiny_model(name):
    recipe = PRESETS[name].tiny()
    model = recipe.build_job(steps=1).model.eval()
    fast = {"steps": 2} if "steps" in option_fields(recipe.sampling) else {}  # a short chain for diffusion
    draw = recipe.text_to_image(model, fast)
    images = draw(["a small bird with a red crown", "this bird has blue wings and a short bill"],
                  torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, recipe.data.image_size, recipe.data.image_size)
    assert torch.isfinite(images).all() and images.abs().max() <= 1 + 1e-5
    again = draw(["a small bird with a red crown", "this bird has blue wings and a short bill"],
                 torch.Generator().manual_seed(0))
    assert torch.equal(images, again)  # the generator is the only source of randomness


@pytest.mark.parametrize("name", sorted(set(PRESETS) - set(generators())))
def test_models_that_draw_nothing_say_so(name):
    recipe = PRESETS[name]
    with pytest.raises(ValueError, match=f"{name} is a {recipe.role}, not a text-to-image model"):
        recipe.text_to_image(torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="takes no sampling options"):
        recipe.options({"steps": "3"})


def test_every_presets_model_class_registered_itself_for_the_zoo():
    from t2ilab.registry import MODEL_CLASSES

    unregistered = sorted(set(model_classes()) - set(MODEL_CLASSES))
    assert not unregistered, f"model classes without @register_model: {unregistered}"


def test_every_preset_has_a_family_a_role_and_a_registered_class():
    for name, recipe in PRESETS.items():
        assert recipe.family and recipe.role in ROLES, name
        assert model_classes()[f"{recipe.model_class.__module__}.{recipe.model_class.__qualname__}"] is \
            recipe.model_class
        assert (recipe.sampling is None) == (recipe.role not in ("generator", "judge")), name
    for name in zoo.available():  # every released card's class is one the registry knows
        assert zoo.load_card(name)["class"] in model_classes(), name
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        get_preset("nope")


def test_options_are_parsed_to_their_declared_types():
    defaults = GuidedSampling()
    options = parse_options(defaults, {"steps": "50", "guidance_scale": "4", "sampler": "ddpm"}, "m")
    assert options == GuidedSampling(sampler="ddpm", steps=50, guidance_scale=4.0)
    assert isinstance(options.steps, int) and isinstance(options.guidance_scale, float)
    assert parse_options(defaults, {"steps": 10.0}, "m").steps == 10  # an integral float is an int
    assert parse_options(defaults, {}, "m") is defaults


@pytest.mark.parametrize("values, message", [
    ({"temperature": "1"}, "unknown sampling option 'temperature' for m; valid options: sampler"),
    ({"steps": "ten"}, "steps of m must be int, got 'ten'"),
    ({"steps": True}, "steps of m must be int"),
    ({"steps": "2.5"}, "steps of m must be int"),
    ({"guidance_scale": "nan"}, "guidance_scale of m must be a finite number"),
    ({"guidance_scale": float("-inf")}, "guidance_scale of m must be a finite number"),
    ({"sampler": "DDIM"}, "sampler of m must be 'ddim' | 'ddpm'"),
    ({"steps": "-3"}, "steps must be between 1 and 1000"),
])
def test_bad_options_are_refused_naming_the_valid_ones(values, message):
    with pytest.raises(ValueError, match=message):
        parse_options(GuidedSampling(), values, "m")


def test_an_options_object_of_another_recipe_is_refused():
    text, uncond = get_preset("diffusion-text-birds32"), get_preset("diffusion-uncond-birds32")
    assert uncond.options(DiffusionSampling(steps=5)).steps == 5
    with pytest.raises(TypeError, match="takes DiffusionSampling options, got GuidedSampling"):
        uncond.options(text.sampling)
    assert dataclasses.asdict(text.options({"guidance_scale": 6})) == {"sampler": "ddim", "steps": 25,
                                                                        "guidance_scale": 6.0}


def test_image_size_and_data_set_travel_as_configuration(tmp_path, monkeypatch, write_fixture):
    from t2ilab.data import DataConfig
    from t2ilab.metrics.protocol import to_protocol_size

    recipe = dataclasses.replace(get_preset("diffusion-text-birds32").tiny(), data=DataConfig(image_size=64))
    job = recipe.build_job(steps=1)
    assert job.model.cfg.image_size == 64 and job.batch_fn(0, 0, 1)[0].shape[-2:] == (64, 64)
    images = recipe.text_to_image(job.model.eval(), {"steps": 1})(["a red bird"], torch.Generator().manual_seed(0))
    assert images.shape == (1, 3, 64, 64)
    # the protocol resizes once, by area: each pixel the mean of a 2x2 block
    torch.testing.assert_close(to_protocol_size(images), torch.nn.functional.avg_pool2d(images, 2))

    monkeypatch.setenv("T2ILAB_CUB_ROOT", str(write_fixture(tmp_path)))
    on_cub = dataclasses.replace(get_preset("clip-birds").tiny(), data=DataConfig("cub", image_size=32))
    job = on_cub.build_job(steps=1)
    loss, _ = job.phases[0].step_fn(job.model, job.batch_fn(0, 0, 1))
    assert torch.isfinite(loss)
    needs_labels = dataclasses.replace(get_preset("evaluator-birds").tiny(), data=DataConfig("cub"))
    with pytest.raises(ValueError, match="evaluator-birds needs .*attribute_index.* which dataset 'cub'"):
        needs_labels.build_job()


def test_a_variant_changes_one_setting_and_leaves_the_preset_alone():
    preset = PRESETS["dfgan-birds32"]
    variant = preset.variant({"diffaugment": "true", "generator_width": "12", "discriminator_lr": "1e-3"})
    assert (variant.diffaugment, variant.model_config.generator_width, variant.discriminator_lr) == (True, 12, 1e-3)
    assert (preset.diffaugment, preset.model_config.generator_width) == (False, get_preset("dfgan-birds32")
                                                                         .model_config.generator_width)
    job = variant.tiny().variant({"diffaugment": True}).build_job(steps=1)
    assert job.card_extra["diffaugment"] is True  # the job is built from the changed setting


@pytest.mark.parametrize("preset, setting", [("stackgan-birds64", "diffaugment"), ("stackgan-birds64", "gp_every"),
                                             ("ddgan-birds32", "diffaugment"), ("ddgan-birds32", "gp_weight")])
def test_a_variant_offers_only_settings_the_recipe_trains_with(preset, setting):
    # StackGAN and DDGAN once inherited DF-GAN's MA-GP and DiffAugment fields without reading them, so
    # `budget.py --vary diffaugment=true` would have retrained the plain recipe under a lever's name
    with pytest.raises(ValueError, match="not a setting"):
        PRESETS[preset].variant({setting: "1"})
    assert getattr(PRESETS["dfgan-birds32"].variant({setting: "1"}), setting) == 1  # DF-GAN trains with it


@pytest.mark.parametrize("values, message", [
    ({"diffaugment": "maybe"}, "must be bool"),
    ({"generator_width": "2.5"}, "must be int"),
    ({"name": "other"}, "not a setting"),  # identity fields are not levers
    ({"warp_speed": 9}, "settable: batch_size"),  # the error lists what can be set
    ({"batch_size": "0"}, "batch_size must be positive \\(the preset's is 64\\)"),  # before minutes of work
    ({"generator_width": "0"}, "generator_width must be positive"),
    ({"gp_every": "0"}, "gp_every must be positive"),
    ({"image_size": "33"}, "image_size is the data's"),
])
def test_a_variant_refuses_unknown_names_and_ill_typed_values(values, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["dfgan-birds32"].variant(values)


def test_a_new_family_is_one_recipe_module(monkeypatch):
    """A toy family (nearest-neighbour "generator": the training image whose caption shares the most words) added
    as a recipe and a row only: the registry, the CLI's options, compare's plan and costs, the chapters' colours
    and the zoo's classes all see it, with no other module edited (CONTRIBUTING.md)."""
    from typing import ClassVar

    from torch import nn

    from t2ilab import cli, compare
    from t2ilab.recipes import family_colours, knob, sampling_option_names
    from t2ilab.recipes.base import Recipe
    from t2ilab.train import TrainConfig

    @dataclasses.dataclass(frozen=True)
    class NearestSampling:
        jitter: float = knob(0.0, sweep=(0.0, 0.1))

    class NearestImages(nn.Module):
        def __init__(self, cfg=None):
            super().__init__()
            self.images = nn.Parameter(torch.zeros(4, 3, 32, 32), requires_grad=False)

    @dataclasses.dataclass
    class NearestRecipe(Recipe):
        family: ClassVar[str] = "nearest"
        colour: ClassVar[str] = "tab:purple"
        model_class: ClassVar[type] = NearestImages

        def text_to_image(self, model, options=None, device="cpu"):
            options = self.options(options)
            return lambda captions, g: model.images[torch.zeros(len(captions), dtype=torch.long)]

    recipe = NearestRecipe("nearest-birds32", "the nearest training image", None, TrainConfig(steps=1), 1,
                           sampling=NearestSampling())
    monkeypatch.setitem(PRESETS, recipe.name, recipe)
    assert recipe.name in generators() and family_colours()["nearest"] == "tab:purple"
    assert sampling_option_names()["jitter"] == ["nearest"]
    args = cli.build_parser().parse_args(["sample", "a bird", "--model", recipe.name, "--jitter", "0.1"])
    assert cli._sampling_options(args) == {"jitter": "0.1"}
    points = compare.plan([recipe.name], n=100, sweep_n=50, slow_n=50)
    assert [(p.label, p.n) for p in points] == [("defaults", 100), ("defaults", 50), ("jitter=0.1", 50)]
    assert recipe.network_evaluations(recipe.options({"jitter": "0.1"})) == 1
    assert f"{NearestImages.__module__}.{NearestImages.__qualname__}" in model_classes()
    from t2ilab.registry import MODEL_CLASSES, dotted_name, register_model

    monkeypatch.setitem(MODEL_CLASSES, dotted_name(NearestImages), None)  # the registration is undone afterwards
    register_model(NearestImages)  # what the decorator on a model class does
    assert zoo._class(dotted_name(NearestImages), recipe.name) is NearestImages
    images = recipe.text_to_image(NearestImages())(["a bird", "a red bird"], torch.Generator())
    assert images.shape == (2, 3, 32, 32)
