"""The survey's claims checker: ties within two standard errors, collapsed models out of every baseline, and the
hybrid's claim not judged when the hybrid collapsed."""
import math

from t2ilab.compare import claims


def row(model, family, **metrics):
    base = dict(fid_sb=100.0, precision=0.3, recall=0.6, attribute_accuracy=0.5, images_per_second=10.0,
                parameters=2e6, n=2000)
    return dict(model=model, family=family, **(base | metrics))


def test_share_test_is_two_standard_errors_of_the_difference():
    a, b = dict(p=0.5, n=100), dict(p=0.4, n=100)
    two_se = 2 * math.sqrt(0.5 * 0.5 / 100 + 0.4 * 0.6 / 100)  # 0.140: a difference of 0.1 is inside it
    assert two_se > 0.1 and claims.share_test(a, b, "p") == "tie"
    a["n"] = b["n"] = 1000  # 2 SE = 0.044
    assert claims.share_test(a, b, "p") == "higher" and claims.share_test(b, a, "p") == "lower"


def test_ratio_test_ties_within_the_margin():
    assert claims.ratio_test(dict(x=104.0), dict(x=100.0), "x") == "tie"
    assert claims.ratio_test(dict(x=94.0), dict(x=100.0), "x") == "lower"


def test_a_collapsed_model_is_no_baseline():
    rows = [row("dalle", "autoregressive", precision=0.30, recall=0.70),
            row("dfgan", "gan", precision=0.25, recall=0.49, images_per_second=400.0),
            row("stackgan", "gan", precision=0.90, recall=0.02, parameters=1e6, images_per_second=150.0),
            row("diffusion-text", "diffusion", precision=0.31, recall=0.68, images_per_second=3.0),
            row("ddgan-birds32", "gan", recall=0.05),
            row("lookup-oracle", "lookup", precision=1.0, recall=1.0)]
    working, collapsed = claims.split_collapsed(rows)
    assert [r["model"] for r in collapsed] == ["stackgan", "ddgan-birds32"]
    found = {c.claim[0]: c for c in claims.survey_claims(rows)}
    # claim 5: against the best working non-AR precision (0.31, a tie), not the collapsed StackGAN's 0.90
    assert "0.31 (diffusion-text)" in found["5"].measured and "less realistic: TIE" in found["5"].verdict
    # claim 2: the collapsed 1M-parameter tree does not decide "fewest parameters"
    assert "fewest parameters: TIE" in found["2"].verdict and "fastest: HOLDS" in found["2"].verdict
    assert found["6"].verdict == "NOT TESTED AT THIS BUDGET"
    assert all(c.sentence.endswith(".") for c in found.values())


def test_the_hybrid_is_judged_part_by_part_when_it_works():
    rows = [row("dfgan-birds32", "gan", recall=0.49, images_per_second=400.0, fid_sb=97.0),
            row("diffusion-text-birds32", "diffusion", recall=0.68, images_per_second=3.0, fid_sb=114.0),
            row("dalle", "autoregressive", recall=0.7, images_per_second=60.0),
            row("ddgan-birds32", "gan", recall=0.60, images_per_second=80.0, fid_sb=120.0)]
    six = claims.survey_claims(rows)[5]
    assert six.verdict == ("coverage over the GAN: HOLDS; speed over diffusion: HOLDS; "
                           "realism of the better parent: DOES NOT HOLD")
    assert six.sentence == "The hybrid wins only coverage over the GAN, speed over diffusion at this budget."


def test_alignment_line_puts_a_model_beside_the_copies(monkeypatch):
    from t2ilab import compare, zoo

    card = {"metrics": {"n": 2000, "attribute_accuracy": 0.4, "unseen": {"attribute_accuracy": 0.3}}}
    monkeypatch.setattr(zoo, "load_card", lambda name: card)
    record = {"rows": [{"model": "lookup-oracle", "family": "lookup", "attribute_accuracy": 1.0,
                        "unseen_attribute_accuracy": 0.81},
                       {"model": "dfgan", "family": "gan", "attribute_accuracy": 0.4}]}
    line = compare.alignment_line("m", record)
    assert line == ("m (card, N=2000): attribute accuracy 40.0% on seen species, 30.0% on unseen combinations\n"
                    "copying training birds instead, seen / unseen (compare.json): lookup-oracle 100% / 81%")
    assert "no lookup rows yet" in compare.alignment_line("m", {"rows": []})
