"""`t2ilab compare` on tiny released models: the same seeds give the same table, cached points are reused until
the weights' sha256 or a setting changes, a broken model is a row that says so, and the network evaluations per
image it reports are the ones a counting hook sees."""
import dataclasses
import json
import math
import shutil
import statistics

import pytest
import torch

from t2ilab import cli, compare, release, zoo
from t2ilab.recipes import PRESETS

JUDGES = ("fid-birds", "evaluator-birds", "clip-birds", "attribute-judge-birds")
QUICK = {"sweeps": False, "progress": False, "memory": False, "lookups": False}  # main points; the rest: own tests


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """A zoo holding the real judges and two tiny untrained generators, registered as presets."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    for name in JUDGES:
        card = zoo.load_card(name)
        for file in (f"{name}.json", card["weights"]):
            shutil.copy(zoo.weights_dir() / file, folder)
    monkeypatch.setenv("T2ILAB_ZOO", str(folder))
    for base, name in (("dfgan-birds32", "tiny-dfgan"), ("ddgan-birds32", "tiny-ddgan")):
        recipe = dataclasses.replace(PRESETS[base].tiny(), name=name)
        monkeypatch.setitem(PRESETS, name, recipe)
        release_tiny(recipe, seed=0)
    return folder


def release_tiny(recipe, seed: int) -> None:
    job = recipe.build_job(steps=1, seed=seed)
    zoo.release(recipe.name, job.model.generator, {"family": "gan", "role": "generator", "command": "test",
                                                   "wall_seconds": 6.0, "parameters": 1})


def quality(result):
    return [{k: row.get(k) for k in compare.QUALITY} for row in result["rows"]]


def test_same_seeds_same_table_and_the_cache_follows_sha256_and_settings(tiny_zoo, tmp_path):
    models = ["tiny-dfgan", "tiny-ddgan"]
    first = compare.run(models, n=10, seed=3, cache_dir=tmp_path / "c1", **QUICK)
    again = compare.run(models, n=10, seed=3, cache_dir=tmp_path / "c2", **QUICK)
    assert quality(first) == quality(again)  # measured twice from scratch: the same numbers
    assert not any(p["cached"] for p in first["points"])
    cached = compare.run(models, n=10, seed=3, cache_dir=tmp_path / "c1", **QUICK)
    assert all(p["cached"] for p in cached["points"]) and quality(cached) == quality(first)
    release_tiny(PRESETS["tiny-ddgan"], seed=1)  # a re-release: new weights, new sha256
    after = compare.run(models, n=10, seed=3, cache_dir=tmp_path / "c1", **QUICK)
    assert [p["cached"] for p in after["points"]] == [True, False]
    other_n = compare.run(models, n=12, seed=3, cache_dir=tmp_path / "c1", **QUICK)
    assert not any(p["cached"] for p in other_n["points"])
    row = first["rows"][1]
    assert row["network_evaluations"] == 4 and row["training_minutes"] == 0.1 and row["family"] == "gan"
    assert row["images_per_second"] > 0 and 0 <= row["attribute_accuracy"] <= 1


def test_a_model_that_fails_to_load_is_a_row_not_a_crash(tiny_zoo, tmp_path):
    card = zoo.load_card("tiny-ddgan")
    path = tiny_zoo / card["weights"]
    path.write_bytes(path.read_bytes()[:-10])
    result = compare.run(["tiny-dfgan", "tiny-ddgan"], n=10, cache_dir=tmp_path, **QUICK)
    good, bad = result["rows"]
    assert "error" not in good and "damaged" in bad["error"]
    table = compare.markdown(result)
    assert "| gan | tiny-ddgan | failed: ZooError" in table and "tiny-dfgan" in table


def test_the_cli_writes_json_and_markdown_and_checks_its_options(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["compare", "--models", "tiny-dfgan", "--n", "10", "--sweep-n", "10", "--out", str(out),
                     "--cache-dir", str(tmp_path / "cache"), "--no-memory"]) == 0
    record = json.loads((out / "compare.json").read_text())
    assert record["command"].startswith("t2ilab compare --models tiny-dfgan")
    settings = [p["label"] for p in record["points"]]
    assert settings == ["defaults", "truncation=0.5", "truncation=0.7", "defaults"]  # the knob swept
    assert "| gan | tiny-dfgan |" in (out / "compare.md").read_text()
    lookups = {row["model"]: row for row in record["rows"] if row["family"] == "lookup"}
    assert set(lookups) == {"lookup-random", "lookup-clip", "lookup-oracle"}
    for row in lookups.values():  # measured on both splits, like a generator
        assert 0 <= row["attribute_accuracy"] <= 1 and 0 <= row["unseen_attribute_accuracy"] <= 1
        assert row["nearest_train_ratio"] == pytest.approx(0.0, abs=1e-3)  # training images, by construction
    assert lookups["lookup-oracle"]["attribute_accuracy"] > lookups["lookup-random"]["attribute_accuracy"]
    assert "| lookup | lookup-oracle |" in (out / "compare.md").read_text()
    for bad, message in ((["--n", "3"], "--n must be between"), (["--models", "evaluator-birds"], "not a generator"),
                         (["--threads", "0"], "--threads"), (["--models", "nope"], "unknown model")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["compare", *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_network_evaluations_match_a_counting_hook():
    """The reported cost against the forward passes actually made (rows of each batch, per image)."""
    rows = []
    for name, options in (("diffusion-text-birds32", {"steps": 3, "guidance_scale": 2.0}),
                          ("diffusion-text-birds32", {"steps": 3, "guidance_scale": 1.0}),
                          ("ddgan-birds32", {})):
        recipe = PRESETS[name].tiny()
        job = recipe.build_job(steps=1)
        model = getattr(job.model, "generator", job.model).eval()
        rows.clear()
        handle = model.register_forward_hook(lambda module, args, out: rows.append(len(args[0])))
        draw = recipe.text_to_image(model, recipe.options(options))
        draw(["a bird with a red crown", "a bird with blue wings"], torch.Generator().manual_seed(0))
        handle.remove()
        assert sum(rows) / 2 == recipe.network_evaluations(recipe.options(options)), (name, options)


def test_the_plan_measures_slow_settings_at_the_slow_n():
    points = compare.plan(["diffusion-text-birds32"], n=2000, sweep_n=300, slow_n=50)
    by_label = {p.label: p for p in points if p.kind == "sweep"}
    assert by_label["steps=1000"].n == 50 and by_label["steps=10"].n == 300 and by_label["defaults"].n == 300
    assert [p.kind for p in points].count("main") == 1


def test_the_committed_comparison_measured_every_released_model_as_released():
    """The chapters read benchmarks/results/compare.json: it must hold every released generator and guided sampler,
    measured on the weights released now (a re-release without a new comparison fails here)."""
    record = zoo.benchmark_record("compare.json")
    rows = {row["model"]: row for row in record["rows"]}
    for name in compare.released_generators():
        assert name in rows and "error" not in rows[name], f"{name} is missing from compare.json"
        assert rows[name]["sha256"] == zoo.load_card(name)["sha256"], f"{name} was re-released since the comparison"
    assert record["settings"]["n"] >= 2000 and record["command"].startswith("t2ilab compare")


def test_sampling_memory_sees_what_a_batch_allocates():
    """A stand-in sampler that holds 256 MiB while it runs: the measured peak above the start is at least that."""
    def draw(captions, g):
        block = torch.ones(64, 1024, 1024)  # 256 MiB, touched
        return block.sum()

    measured = compare.sampling_memory_mb(draw, ["a bird"], "cpu")
    if measured is None:
        pytest.skip("no /proc/self/status here")
    assert 240 <= measured <= 400


def test_the_budget_fit_is_least_squares_in_log2_steps():
    steps, accuracy = [300, 600, 1200, 3600], [0.31, 0.37, 0.40, 0.46]
    expected = statistics.linear_regression([math.log2(s) for s in steps], accuracy)
    a, b = compare.log_fit(steps, accuracy)
    assert a == pytest.approx(expected.slope) and b == pytest.approx(expected.intercept)
    with pytest.raises(ValueError, match="two budgets"):
        compare.log_fit([300, 300], [0.3, 0.4])


def _budget_record(points, released=None):
    runs = [{"steps": s, "attribute_accuracy": acc, "train_wall_seconds": sec, "fid_sb": 100.0}
            for s, acc, sec in points]
    return {"preset": "dalle-birds32", "family": "autoregressive", "n": 300, "runs": runs, "released": released}


def test_a_budget_curve_extrapolates_along_its_line_at_its_cost_per_step(tmp_path):
    # +5 points per doubling from 30% at 100 steps of 1 s: 50% needs 4 more doublings, 1,600 steps = 26.7 minutes
    record = _budget_record([(100, 0.30, 100.0), (200, 0.35, 300.0)],  # the 200-step run shared the cores
                            released={"steps": 400, "attribute_accuracy": 0.40, "train_wall_seconds": 400.0,
                                      "fid_sb": 90.0})
    (tmp_path / "budget_dalle-birds32.json").write_text(json.dumps(record))
    (tmp_path / "compare.json").write_text("{}")  # other records are not curves
    curves = compare.budget_curves(tmp_path)
    assert list(curves) == ["dalle-birds32"]
    curve = curves["dalle-birds32"]
    assert [p["steps"] for p in curve.points] == [100, 200, 400]  # the released model joins as the last point
    assert curve.per_doubling == pytest.approx(0.05)
    assert curve.last_per_doubling == pytest.approx(0.05)  # a straight line: the last segment has its slope
    assert curve.seconds_per_step == 1.0 and curve.minutes == pytest.approx([100 / 60, 200 / 60, 400 / 60])
    assert curve.minutes_to_reach(0.50) == pytest.approx(1600 / 60)
    assert "+5.0 points per doubling" in curve.verdict(0.5) and "0.4 CPU-hours" in curve.verdict(0.5)
    flat = compare.BudgetCurve("flat", _budget_record([(100, 0.30, 100.0), (200, 0.29, 200.0)]))
    assert flat.minutes_to_reach(0.5) is None  # a curve that does not rise never gets there
    assert "does not rise" in flat.verdict(0.5)
    one = compare.BudgetCurve("one lever", _budget_record([(100, 0.30, 100.0)]))  # --vary at one budget
    assert one.per_doubling is None and one.last_per_doubling is None and one.minutes_to_reach(0.5) is None
    assert "one budget, no slope" in one.verdict(0.5)
    # points without the judges' sha256 (records made before the judges were retrained) say so
    assert not curve.read_by_todays_judges and "read by the judges before their retraining" in curve.verdict(0.5)
    today = compare.judge_versions()
    current = _budget_record([(100, 0.30, 100.0), (200, 0.35, 200.0)])
    current["runs"] = [r | {"judges": today} for r in current["runs"]]
    current_curve = compare.BudgetCurve("current", current)
    assert current_curve.read_by_todays_judges and "retraining" not in current_curve.verdict(0.5)


def test_evaluate_write_keeps_the_main_metrics_and_files_another_n_as_a_variant(tiny_zoo):
    assert cli.main(["evaluate", "tiny-dfgan", "--n", "12", "--write"]) == 0
    main = zoo.load_card("tiny-dfgan")["metrics"]
    assert main["n"] == 12  # no main metrics yet: these become them
    assert cli.main(["evaluate", "tiny-dfgan", "--n", "10", "--write"]) == 0
    card = zoo.load_card("tiny-dfgan")
    assert card["metrics"] == main  # another N does not replace the card's main metrics...
    assert card["evaluations"]["n=10"]["n"] == 10  # ...it is kept beside them, as budget.py looks it up
    assert release.variant_label({"truncation": "0.5"}, PRESETS["tiny-dfgan"].options({"truncation": "0.5"}),
                             {"n": 10}) == "truncation=0.5-n=10"


def test_spearman_is_the_pearson_correlation_of_the_ranks():
    a = [3.1, 0.5, 2.2, 9.0, 4.4, 1.0]
    b = [30.0, 2.0, 5.0, 70.0, 10.0, 9.0]
    ranks = [sorted(xs).index(x) for xs in (a, b) for x in xs]
    expected = statistics.correlation(ranks[:6], ranks[6:])
    assert compare.spearman(a, b) == pytest.approx(expected)
    assert compare.spearman(a, a) == pytest.approx(1.0)
    assert compare.spearman(a, [-x for x in a]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="same length"):
        compare.spearman(a, b[:3])


def test_a_lever_is_paired_with_the_plain_run_at_the_same_steps_and_judged_against_its_noise():
    plain = compare.BudgetCurve("dalle-birds32", _budget_record([(300, 0.30, 300.0), (600, 0.34, 600.0)],
                                                                released={"steps": 600, "attribute_accuracy": 0.9,
                                                                          "train_wall_seconds": 1.0}))
    record = _budget_record([(600, 0.44, 700.0), (900, 0.45, 900.0)])
    for run in (*record["runs"], *plain.record["runs"]):
        run.update(recall=0.5, coverage=0.5)
    lever = compare.BudgetCurve("dalle-birds32-top_k=32", {**record, "varied": {"top_k": 32}})
    effects = compare.lever_effects(plain, lever)
    assert [e.steps for e in effects] == [600]  # 900 has no plain run; the released model is not a retrained run
    (effect,) = effects
    assert effect.without["attribute_accuracy"] == 0.34 and effect.gain == pytest.approx(0.10)
    noise = 2 * statistics.stdev([0, 1]) / math.sqrt(2) * math.sqrt(2 / 300)  # 2 SE of a difference at p = 0.5
    assert effect.noise == pytest.approx(noise)
    assert effect.verdict == "top_k=32 helps attribute accuracy"  # 10 points against 2 SE of 8.2
    assert "+10.0 points" in effect.line()
    flat = dataclasses.replace(effect, with_lever={**effect.with_lever, "attribute_accuracy": 0.30})
    assert flat.verdict == "top_k=32: attribute accuracy within noise"  # -4 points
    collapsed = dataclasses.replace(flat, with_lever={**flat.with_lever, "fid_sb": 210.0, "recall": 0.01})
    assert collapsed.verdict == ("top_k=32: attribute accuracy within noise, but FID-SB 100 -> 210, "
                                 "recall 0.50 -> 0.01")  # a lever that wrecks realism is not "within noise"
    with pytest.raises(ValueError, match="plain record"):
        compare.lever_effects(lever, plain)


def test_budget_curves_name_a_missing_records_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="T2ILAB_RESULTS"):
        compare.budget_curves(tmp_path / "nowhere")


def test_a_damaged_cache_file_is_named_and_measured_again(tiny_zoo, tmp_path, capsys):
    first = compare.run(["tiny-dfgan"], n=10, seed=3, cache_dir=tmp_path, **QUICK)
    (path,) = tmp_path.glob("*.json")
    path.write_text(path.read_text()[:20])  # cut short, as by a full disk
    again = compare.run(["tiny-dfgan"], n=10, seed=3, cache_dir=tmp_path, **QUICK)
    assert f"{path} is damaged" in capsys.readouterr().err
    assert "error" not in again["rows"][0] and quality(again) == quality(first)
    assert not again["points"][0]["cached"] and json.loads(path.read_text())  # measured and stored again
