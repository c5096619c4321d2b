"""The `t2ilab` command line: data, train (a couple of steps, resumable), zoo list, errors."""
import pytest

from t2ilab.cli import main
from t2ilab.train import load_checkpoint


def test_data_command(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "11788" in out and "5994 train / 5794 test" in out and "200 species" in out


@pytest.mark.parametrize("preset", ["evaluator-birds", "clip-birds", "diffusion-text-birds32", "diffusion-uncond-birds32",
                                    "noisy-classifier-birds32", "noisy-clip-birds32"])
def test_train_a_few_steps_then_resume(preset, tmp_path, capsys):
    out = tmp_path / preset
    assert main(["train", preset, "--steps", "2", "--out", str(out)]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert main(["train", preset, "--steps", "3", "--out", str(out)]) == 0  # continues from step 2
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 3 and [h["step"] for h in state["history"]] == [0, 1, 2]
    assert "done: 3 steps" in capsys.readouterr().out


def test_zoo_list(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "evaluator-birds" in out and "clip-birds" in out


def exit_message(argv, capsys) -> str:
    """Run the CLI on argv, expect exit code 2, return what it printed to stderr (one line)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_sampler_options_are_refused_for_models_that_do_not_sample(capsys):
    assert "evaluator-birds takes no sampling options" in exit_message(
        ["evaluate", "evaluator-birds", "--sampler", "ddpm", "--n", "10"], capsys)


@pytest.mark.parametrize("option, expected", [
    ("temperature=0.7", "unknown sampling option 'temperature'.*valid options: sampler .*steps .*guidance_scale"),
    ("steps=2.5", "steps of diffusion-text-birds32 must be int"),
    ("sampler=euler", "sampler of diffusion-text-birds32 must be 'ddim' | 'ddpm'"),
    ("guidance_scale=inf", "guidance_scale of diffusion-text-birds32 must be a finite number"),
    ("steps=0", "steps must be at least 1"),
    ("steps", "--set takes NAME=VALUE"),
])
def test_sampling_options_are_checked_before_any_work(option, expected, capsys):
    import re

    assert re.search(expected, exit_message(["evaluate", "diffusion-text-birds32", "--set", option], capsys))


def test_a_guidance_scale_is_refused_for_a_model_without_one(capsys):
    err = exit_message(["evaluate", "diffusion-uncond-birds32", "--guidance-scale", "3"], capsys)
    assert "unknown sampling option 'guidance_scale'" in err and "sampler" in err and "steps" in err


def test_unknown_preset(capsys):
    assert "unknown model or preset 'nope'; known: clip-birds" in exit_message(["train", "nope", "--steps", "1"], capsys)


def test_training_steps_must_be_positive(capsys):
    assert "--steps must be at least 1" in exit_message(["train", "clip-birds", "--steps", "0"], capsys)


def test_training_commits_survive_a_resume(tmp_path):
    from t2ilab.cli import _training_commits
    from t2ilab.train import save_checkpoint

    path = tmp_path / "checkpoint.pt"
    assert _training_commits(path, True, 10, "aaa") == ["aaa"]
    save_checkpoint(path, {"step": 4, "extra": {"commits": ["aaa"]}})
    assert _training_commits(path, True, 10, "bbb") == ["aaa", "bbb"]  # bbb trains steps 4..9
    save_checkpoint(path, {"step": 10, "extra": {"commits": ["aaa", "bbb"]}})
    assert _training_commits(path, True, 10, "ccc") == ["aaa", "bbb"]  # ccc only releases
    assert _training_commits(path, False, 10, "ddd") == ["ddd"]


def test_variant_labels_name_settings_as_parsed_and_the_generated_count():
    from t2ilab.cli import variant_label
    from t2ilab.recipes import get_preset

    text = get_preset("diffusion-text-birds32")
    given = {"steps": "25", "sampler": "ddpm"}
    assert variant_label(given, text.options(given), {"n": 500}) == "sampler=ddpm-steps=25-n=500"
    judge = get_preset("noisy-classifier-birds32")
    assert variant_label({"guidance_scale": "3"}, judge.options({"guidance_scale": "3"}), {"n": 300}) == \
        "guidance_scale=3.0-n=300"  # the label the card's sweep already uses
