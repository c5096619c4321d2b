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


def test_sampler_options_are_refused_for_models_that_do_not_sample():
    with pytest.raises(SystemExit, match="apply to diffusion models"):
        main(["evaluate", "evaluator-birds", "--sampler", "ddpm", "--n", "10"])


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'nope'.*clip-birds"):
        main(["train", "nope", "--steps", "1"])


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


def test_variant_labels_name_settings_and_the_generated_count():
    from t2ilab.cli import _variant_label

    assert _variant_label({"steps": 25, "sampler": "ddpm"}, {"n": 500}) == "sampler=ddpm-steps=25-n=500"
    assert _variant_label({"guidance_scale": 3.0}, {"guided_n": 300, "attribute_accuracy_t0": 0.9}) == \
        "guidance_scale=3.0-n=300"
