"""The `t2ilab` command line: data, train (a couple of steps, resumable), zoo list, errors."""
import os

import pytest

from t2ilab.cli import main
from t2ilab.train import load_checkpoint


def test_data_command(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "11788" in out and "5994 train / 5794 test" in out and "200 species" in out


@pytest.mark.parametrize("preset", ["fid-birds", "clip-birds", "diffusion-text-birds32", "diffusion-uncond-birds32",
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
    capsys.readouterr()  # what earlier commands printed
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
    ("steps=0", "steps must be between 1 and 1000"),
    ("steps", "--set takes NAME=VALUE"),
])
def test_sampling_options_are_checked_before_any_work(option, expected, capsys):
    import re

    assert re.search(expected, exit_message(["evaluate", "diffusion-text-birds32", "--set", option], capsys))


def test_a_guidance_scale_is_refused_for_a_model_without_one(capsys):
    err = exit_message(["evaluate", "diffusion-uncond-birds32", "--guidance-scale", "3"], capsys)
    assert "unknown sampling option 'guidance_scale'" in err and "sampler" in err and "steps" in err


def test_unknown_preset(capsys):
    message = exit_message(["train", "nope", "--steps", "1"], capsys)
    assert "unknown model or preset 'nope'; known: " in message and "clip-birds" in message


def test_training_steps_must_be_positive(capsys):
    assert "--steps must be at least 1" in exit_message(["train", "clip-birds", "--steps", "0"], capsys)


def test_training_commits_survive_a_resume(tmp_path):
    from t2ilab.release import training_commits as _training_commits
    from t2ilab.train import save_checkpoint

    path = tmp_path / "checkpoint.pt"
    assert _training_commits(path, True, 10, "aaa") == ["aaa"]
    save_checkpoint(path, {"step": 4, "extra": {"commits": ["aaa"]}})
    assert _training_commits(path, True, 10, "bbb") == ["aaa", "bbb"]  # bbb trains steps 4..9
    save_checkpoint(path, {"step": 10, "extra": {"commits": ["aaa", "bbb"]}})
    assert _training_commits(path, True, 10, "ccc") == ["aaa", "bbb"]  # ccc only releases
    assert _training_commits(path, False, 10, "ddd") == ["ddd"]


def test_variant_labels_name_settings_as_parsed_and_the_generated_count():
    from t2ilab.release import variant_label
    from t2ilab.recipes import get_preset

    text = get_preset("diffusion-text-birds32")
    given = {"steps": "50", "guidance_scale": "6"}
    assert variant_label(given, text.options(given), {"n": 500}) == "guidance_scale=6.0-steps=50-n=500"
    given = {"sampler": "ddpm"}
    assert variant_label(given, text.options(given), {"n": 500}) == "sampler=ddpm-n=500"  # the card's label
    judge = get_preset("noisy-classifier-birds32")
    assert variant_label({"guidance_scale": "3"}, judge.options({"guidance_scale": "3"}), {"n": 300}) == \
        "guidance_scale=3.0-n=300"  # the label the card's sweep already uses


def test_a_release_is_not_replaced_without_asking(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    (tmp_path / "clip-birds.json").write_text("{}")
    err = exit_message(["train", "clip-birds", "--steps", "1", "--release", "--out", str(tmp_path / "run")], capsys)
    assert "clip-birds is already released" in err and "--replace" in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_release_needs_a_clean_tree(tmp_path, monkeypatch, capsys):
    from t2ilab import zoo

    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    monkeypatch.setattr(zoo, "git_commit", lambda: "0123456789abcdef" * 2 + "01234567-dirty")
    err = exit_message(["train", "clip-birds", "--steps", "1", "--release", "--out", str(tmp_path / "run")], capsys)
    assert "--release needs a clean tree" in err and "0123456789ab" in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_resume_refuses_another_preset_or_model_config_and_fewer_steps(tmp_path, capsys):
    import torch

    from t2ilab.train import save_checkpoint

    out = tmp_path / "run"
    assert main(["train", "noisy-classifier-birds32", "--steps", "2", "--out", str(out)]) == 0
    err = exit_message(["train", "fid-birds", "--steps", "2", "--out", str(out)], capsys)
    assert "preset 'noisy-classifier-birds32', not 'fid-birds'" in err and "--no-resume" in err
    state = load_checkpoint(out / "checkpoint.pt")
    state["extra"]["model_config"]["schedule"] = "cosine"  # as if the preset's config had changed since
    save_checkpoint(out / "checkpoint.pt", state)
    err = exit_message(["train", "noisy-classifier-birds32", "--steps", "3", "--out", str(out)], capsys)
    assert "another model config (schedule: 'cosine' -> 'linear')" in err
    state["extra"]["model_config"]["schedule"] = "linear"
    save_checkpoint(out / "checkpoint.pt", state)
    err = exit_message(["train", "noisy-classifier-birds32", "--steps", "1", "--out", str(out)], capsys)
    assert "already trained 2 steps, more than the 1 asked" in err
    stale = out / "checkpoint.pt.tmp99999999"  # left by a killed write of a process that is gone
    stale.write_bytes(b"partial")
    assert main(["train", "noisy-classifier-birds32", "--steps", "3", "--checkpoint-every", "1",
                 "--out", str(out)]) == 0
    assert not stale.exists() and load_checkpoint(out / "checkpoint.pt")["config"]["checkpoint_every"] == 1
    assert torch.is_tensor(load_checkpoint(out / "checkpoint.pt")["rng"]["cpu"])


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "clip-birds", "--device", "cuda:7"], "device 'cuda:7' is not available here"),
    (["evaluate", "clip-birds", "--device", "tpu"], "unknown device 'tpu'"),
    (["evaluate", "clip-birds", "--seed", "-1"], "--seed must be between 0 and 2**32 - 1"),
    (["evaluate", "clip-birds", "--n", "0"], "--n must be between 1 and 5794"),
    (["evaluate", "diffusion-text-birds32", "--n", "3"], "--n must be between 10 and 5794"),
    (["evaluate", "diffusion-text-birds32", "--n", "1000000000"], "--n must be between 10 and 5794"),
    (["train", "clip-birds", "--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
])
def test_bad_options_are_one_line_errors(argv, expected, capsys):
    assert expected in exit_message(argv, capsys)


def test_sample_writes_a_grid_with_its_settings(tmp_path):
    from PIL import Image

    out = tmp_path / "birds.png"
    assert main(["sample", "a small bird with a red crown", "--model", "diffusion-uncond-birds32", "--n", "2",
                 "--steps", "2", "--seed", "5", "-o", str(out)]) == 0
    with Image.open(out) as picture:
        assert picture.text["t2ilab:model"] == "diffusion-uncond-birds32"
        assert picture.text["t2ilab:prompt"] == "a small bird with a red crown"
        assert '"steps": 2' in picture.text["t2ilab:options"] and picture.text["t2ilab:seed"] == "5"
        assert picture.text["t2ilab:prompt_read"] == "false"  # an unconditional model: the PNG says so


@pytest.mark.parametrize("argv, expected", [
    (["   ", "--model", "diffusion-text-birds32"], "empty prompt"),
    (["a smal bird with a crimsonn crown", "--model", "diffusion-text-birds32"],
     "'smal' \\(did you mean small.*'crimsonn' \\(did you mean crimson"),
    (["a small bird 红色 crown", "--model", "diffusion-text-birds32"], "characters the captions never use: 红 色"),
    (["a bird", "--model", "nope"], "unknown model 'nope' for sampling; models that draw: .*diffusion-text-birds32"),
    (["a bird", "--model", "clip-birds"], "unknown model 'clip-birds' for sampling"),
    (["a bird", "--model", "diffusion-text-birds32", "-o", "/no/such/folder/b.png"], "folder of /no/such/folder/b.png"),
    (["a bird", "--model", "diffusion-uncond-birds32", "--temperature", "0.5"], "unknown sampling option 'temperature'"),
    (["a bird " * 30, "--model", "diffusion-text-birds32", "--steps", "1"], "reads at most 38"),
    (["a bird", "--model", "dalle-birds32", "--set", "rerank=1000000"], "rerank must be between 1 and 16"),
    (["a bird", "--model", "dalle-birds32", "--n", "256", "--rerank", "4"], "draws 1024 images; at most 512"),
    (["a bird", "--model", "diffusion-text-birds32", "--sampler", "ddpm", "--steps", "5"],
     "ddpm sampler takes all 1000 steps.*steps=5 is for the ddim"),
    (["a bird", "--model", "diffusion-text-birds32", "--steps", "5000"], "steps must be between 1 and 1000"),
    (["a bird", "--model", "diffusion-text-birds32", "--seed", str(2 ** 70)], "--seed must be between 0 and 2\\*\\*32"),
    (["a bird", "--model", "diffusion-text-birds32", "-o", "/tmp"], "/tmp is a folder"),
])
def test_sample_refuses_bad_prompts_and_paths_in_one_line(argv, expected, capsys, tmp_path):
    import re

    if "-o" not in argv:
        argv = argv + ["-o", str(tmp_path / "b.png")]
    assert re.search(expected, exit_message(["sample", *argv], capsys))


def test_sample_list_names_models_and_words(capsys):
    assert main(["sample", "--list"]) == 0
    out = capsys.readouterr().out
    assert "diffusion-text-birds32" in out and "guidance_scale (float, default 3.0)" in out and " crimson " in out


def test_ddpm_options_record_the_steps_that_run():
    from t2ilab.recipes import get_preset

    options = get_preset("diffusion-text-birds32").options({"sampler": "ddpm"})
    assert options.steps == 1000  # what the PNG's metadata and the card then say


def test_a_guidance_scale_that_overflows_is_an_error_not_a_nan_picture(tmp_path, capsys):
    out = tmp_path / "b.png"
    err = exit_message(["sample", "a bird with a red crown", "--model", "diffusion-text-birds32", "--n", "1",
                        "--steps", "3", "--guidance-scale", "1e308", "-o", str(out)], capsys)
    assert "non-finite values" in err and not out.exists()


@pytest.mark.parametrize("argv, expected", [
    (["compare", "--models", ",,,"], "--models names no model"),
    (["train", "dfgan-birds32", "--release", "--replace", "--eval-n", "2"], "--eval-n must be between 10 and 5794"),
    (["train", "dfgan-birds32", "--release", "--replace", "--eval-n", "100000"], "--eval-n must be between"),
])
def test_checkable_arguments_are_refused_before_any_work(argv, expected, capsys):
    assert expected in exit_message(argv, capsys)


def test_compare_out_must_be_a_folder_and_write_needs_a_writable_zoo(tmp_path, monkeypatch, capsys):
    import shutil
    import stat

    from t2ilab import zoo

    file = tmp_path / "file"
    file.write_text("")
    assert "--out must be a folder" in exit_message(["compare", "--models", "dfgan-birds32", "--out", str(file)],
                                                     capsys)
    folder = tmp_path / "zoo"
    folder.mkdir()
    for suffix in (".json", ".safetensors.xz"):
        shutil.copy(zoo.WEIGHTS_DIR / f"dfgan-birds32{suffix}", folder)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv("T2ILAB_ZOO", str(folder))
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("root can write anywhere")
        err = exit_message(["evaluate", "dfgan-birds32", "--n", "10", "--write"], capsys)
        assert "read-only" in err
    finally:
        folder.chmod(stat.S_IRWXU)


def test_a_missing_zoo_folder_and_a_damaged_card_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path / "nowhere"))
    err = exit_message(["sample", "a bird", "--model", "dfgan-birds32"], capsys)
    assert f"the zoo folder {tmp_path / 'nowhere'} does not exist ($T2ILAB_ZOO points there)" in err
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    (tmp_path / "dfgan-birds32.json").write_text("{not json")
    assert "is not valid JSON" in exit_message(["evaluate", "dfgan-birds32", "--n", "10"], capsys)


def test_a_result_written_while_an_evaluation_ran_is_kept(tmp_path, monkeypatch, capsys):
    """Two `evaluate --write` at once: the one that finishes last must not drop the other's result."""
    import json
    import shutil

    from t2ilab import zoo
    from t2ilab.recipes import PRESETS

    for suffix in (".json", ".safetensors.xz"):
        shutil.copy(zoo.WEIGHTS_DIR / f"dfgan-birds32{suffix}", tmp_path)
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    recipe = PRESETS["dfgan-birds32"]

    def evaluate(model, n=None, seed=0, options=None):  # meanwhile, another process writes its variant
        zoo.update_card("dfgan-birds32", lambda card: card.setdefault("evaluations", {}).update(other={"n": 1}))
        return {"n": n, "attribute_accuracy": 0.5}

    monkeypatch.setattr(type(recipe), "evaluate", lambda self, *a, **k: evaluate(*a, **k))
    assert main(["evaluate", "dfgan-birds32", "--n", "20", "--truncation", "0.5", "--write"]) == 0
    card = json.loads((tmp_path / "dfgan-birds32.json").read_text())
    assert {"other", "truncation=0.5-n=20"} <= set(card["evaluations"])


def test_an_unusable_compare_cache_is_one_line_before_any_work(capsys):
    err = exit_message(["compare", "--models", "dfgan-birds32", "--cache-dir", "/dev/null/x"], capsys)
    assert "cannot use /dev/null/x for compare's cache (--cache-dir)" in err


def test_help_states_the_bound_of_every_bounded_option_and_the_bound_holds(capsys):
    """Each limit an options class declares (LIMITS) is in `t2ilab sample --help`, and its `check` refuses a value
    just outside it."""
    import dataclasses

    from t2ilab.recipes import PRESETS, option_limits

    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    outside = {"steps": 1001, "rerank": 17, "truncation": 1.5, "temperature": -1.0, "top_k": -1, "top_p": 0.0}
    assert set(option_limits()) == set(outside)
    for name, limits in option_limits().items():
        assert all(limit in text for limit in limits), name
        for recipe in PRESETS.values():
            sampling = recipe.sampling
            if sampling is not None and name in getattr(type(sampling), "LIMITS", {}):
                with pytest.raises(ValueError, match=name):
                    dataclasses.replace(sampling, **{name: outside[name]}).check()
    assert "n x rerank <= 512" in text
