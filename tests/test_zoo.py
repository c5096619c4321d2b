"""The model zoo: fp16 safetensors (packed, lossless) + card round trip, sha256 checks with clear errors, the table."""
import hashlib
import json
import lzma

import pytest
import torch

from t2ilab import zoo
from t2ilab.clip import CLIPConfig, MiniCLIP
from t2ilab.recipes import get_preset


@pytest.fixture
def tiny_release(tmp_path, monkeypatch):
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    torch.manual_seed(0)
    model = MiniCLIP(CLIPConfig(vocab_size=12, max_length=8, text_dim=16, text_layers=1, text_heads=2,
                                image_channels=(8, 8), embed_dim=8))
    card = {"command": "t2ilab train tiny", "steps": 1, "metrics": {"r_precision": 0.5}, "parameters": 1,
            "tokenizer": {"vocab": ["<pad>", "<unk>", "<bos>", "<eos>", "red", "bird"], "max_length": 8}}
    path = zoo.release("tiny-clip", model, card)
    return model, path


def test_round_trip_in_fp16(tiny_release):
    model, path = tiny_release
    assert path.read_bytes()[:8] != b"\x80\x02\x8a\n"  # not a pickle
    loaded = zoo.load("tiny-clip")
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.allclose(a.half().float(), b), name
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("red bird")) == "red bird"
    card = zoo.load_card("tiny-clip")
    assert card["packed_sha256"] == zoo.sha256_file(path) and card["dtype"] == "float16"
    assert card["sha256"] == hashlib.sha256(zoo.unpack_bytes(path.read_bytes())).hexdigest()
    assert card["class"] == "t2ilab.clip.MiniCLIP" and card["config"]["text_dim"] == 16
    assert "tiny-clip" in zoo.table() and zoo.available() == ["tiny-clip"]


def test_missing_file_is_named(tiny_release):
    _, path = tiny_release
    path.unlink()
    with pytest.raises(zoo.ZooError, match="missing.*tiny-clip.safetensors"):
        zoo.load("tiny-clip")


def test_truncated_file_is_caught(tiny_release):
    _, path = tiny_release
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(zoo.ZooError, match="damaged or altered.*tiny-clip.safetensors|tiny-clip.safetensors.*damaged"):
        zoo.load("tiny-clip")


def test_altered_file_is_caught(tiny_release):
    _, path = tiny_release
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="sha256"):
        zoo.load("tiny-clip")


def test_unknown_name_lists_what_exists(tiny_release):
    with pytest.raises(zoo.ZooError, match="tiny-clip"):
        zoo.load("no-such-model")


def edit_card(folder, change) -> None:
    """Rewrite tiny-clip's card as `change(card)` returns it."""
    path = folder / "tiny-clip.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


@pytest.mark.parametrize("dotted", ["os.system", "t2ilab.cli.main", "t2ilab.zoo.weights.evil.Model"])
def test_card_class_must_be_a_registered_model_class(tiny_release, tmp_path, dotted):
    edit_card(tmp_path, lambda card: card | {"class": dotted})
    with pytest.raises(zoo.ZooError, match="not a t2ilab model class"):
        zoo.load("tiny-clip")


@pytest.mark.parametrize("weights", ["../tiny-clip.safetensors", "/dev/zero", "sub/tiny-clip.safetensors", ".."])
def test_card_weights_must_be_a_plain_file_name(tiny_release, tmp_path, weights):
    edit_card(tmp_path, lambda card: card | {"weights": weights})
    with pytest.raises(zoo.ZooError, match="plain file name"):
        zoo.load("tiny-clip")


@pytest.mark.parametrize("damage, expected", [
    (lambda card: [card], "must hold a JSON object"),
    (lambda card: {k: v for k, v in card.items() if k != "sha256"}, "field 'sha256' is missing"),
    (lambda card: card | {"config": card["config"] | {"text_dim": 32}}, "does not fit the config in tiny-clip.json"),
    (lambda card: card | {"config": card["config"] | {"text_dimm": 16}}, r"unknown field\(s\) \['text_dimm'\]"),
])
def test_a_broken_card_is_named_with_its_field(tiny_release, tmp_path, damage, expected):
    edit_card(tmp_path, damage)
    with pytest.raises(zoo.ZooError, match=expected):
        zoo.load("tiny-clip")


def test_a_damaged_card_is_named_under_the_table_and_the_rest_listed(tiny_release, tmp_path):
    model, _ = tiny_release
    zoo.release("other-clip", model, {"command": "t2ilab train tiny", "steps": 2, "parameters": "hand-edited"})
    edit_card(tmp_path, lambda card: {k: v for k, v in card.items() if k != "class"})  # tiny-clip
    lines = zoo.table(metrics=True).splitlines()
    assert lines[1].startswith("other-clip") and " ? " in lines[1]  # a non-number shown as "?"
    assert lines[-1].startswith("DAMAGED tiny-clip:") and "field 'class' is missing" in lines[-1]


def test_every_released_model_loads_and_its_card_is_complete():
    """The shipped zoo: weights match their sha256, and each card names how it was trained and measured."""
    names = zoo.available()
    assert {"evaluator-birds", "clip-birds", "diffusion-uncond-birds32", "diffusion-text-birds32",
            "noisy-classifier-birds32", "noisy-clip-birds32"} <= set(names)
    for name in names:
        card = zoo.load_card(name)
        trained_as = card.get("renamed", {}).get("from", name)  # a renamed model keeps the command it was trained by
        assert card["command"].startswith(f"t2ilab train {trained_as}"), name
        if trained_as != name:  # and its preset's recipe is the one it was trained with
            assert card["train_config"]["steps"] == get_preset(name).train_config.steps, name
        assert len(card["commit"]) >= 40 and "dirty" not in card["commit"], name
        assert card["wall_seconds"] > 0 and card["steps"] > 0 and card["parameters"] > 0, name
        model = zoo.load(name)
        assert sum(p.numel() for p in model.parameters()) == card["parameters"], name
        preset = get_preset(name)
        assert (card["family"], card["role"]) == (preset.family, preset.role), name
        metrics = card["metrics"]
        if preset.role in ("generator", "judge"):  # one schema: the drawn images measured at the protocol's N
            for m in [metrics, *card.get("evaluations", {}).values()]:
                assert not any(k.startswith("guided_") for k in m), name
                assert 0 <= m["attribute_accuracy"] <= 1 and m["generator"] in names, name
                assert preset.options(m["sampling"]) is not None, name  # the options it drew with are valid ones
            assert metrics["n"] >= 2000, name
        if preset.role == "judge":
            assert metrics["generator"] == preset.guided_model and metrics["guide"] == name


def test_an_interrupted_release_leaves_the_previous_pair(tiny_release, tmp_path, monkeypatch):
    model, path = tiny_release
    before = (path.read_bytes(), (tmp_path / "tiny-clip.json").read_text())

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the card")

    dumps = zoo.json.dumps
    monkeypatch.setattr(zoo.json, "dumps", crash)
    with torch.no_grad():
        model.log_scale.add_(1.0)  # new weights
    with pytest.raises(KeyboardInterrupt):
        zoo.release("tiny-clip", model, {"command": "t2ilab train tiny", "steps": 2})
    monkeypatch.setattr(zoo.json, "dumps", dumps)
    assert (path.read_bytes(), (tmp_path / "tiny-clip.json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-clip.json", "tiny-clip.safetensors.xz"]
    zoo.load("tiny-clip")  # still a consistent pair


def test_a_release_whose_card_rename_fails_puts_the_previous_weights_back(tiny_release, tmp_path, monkeypatch):
    model, path = tiny_release
    before = (path.read_bytes(), (tmp_path / "tiny-clip.json").read_text())
    replace = zoo.os.replace

    def failing(src, dst):
        if str(dst).endswith("tiny-clip.json"):
            raise OSError("disk full while renaming the card")
        return replace(src, dst)

    monkeypatch.setattr(zoo.os, "replace", failing)
    with torch.no_grad():
        model.log_scale.add_(1.0)  # new weights
    with pytest.raises(OSError, match="disk full"):
        zoo.release("tiny-clip", model, {"command": "t2ilab train tiny", "steps": 2})
    monkeypatch.setattr(zoo.os, "replace", replace)
    assert (path.read_bytes(), (tmp_path / "tiny-clip.json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-clip.json", "tiny-clip.safetensors.xz"]
    zoo.load("tiny-clip")


def test_cards_are_strict_json():
    with pytest.raises(ValueError):
        zoo.write_card("never-written", {"metric": float("inf")})


def test_packing_is_lossless_and_splits_the_bytes_of_each_half():
    """Packing against an independent reading: the xz stream holds the header, then every value's high byte, then
    every low byte, and unpacking gives back the very bytes safetensors wrote."""
    from safetensors.torch import save

    values = torch.randn(1000).half()
    raw = save({"w": values})
    packed = zoo.pack_bytes(raw)
    start = 8 + int.from_bytes(raw[:8], "little")
    plain = lzma.decompress(packed)
    as_int = values.view(torch.int16).numpy().astype("<i2").view("<u2")
    assert plain[:start] == raw[:start]
    assert list(plain[start:start + 1000]) == [int(v) >> 8 for v in as_int]
    assert list(plain[start + 1000:]) == [int(v) & 0xFF for v in as_int]
    assert zoo.unpack_bytes(packed) == raw


def test_a_packed_file_that_inflates_too_far_is_refused():
    raw = bytes(8) + bytes(10_000)  # an empty header, then zeros: compresses to almost nothing
    with pytest.raises(zoo.ZooError, match="inflate past"):
        zoo.unpack_bytes(lzma.compress(raw), limit=1000)


def test_pack_keeps_the_cards_sha256_of_a_plain_release(tiny_release, tmp_path):
    """An older release stored plain safetensors: `pack` stores it packed, and the card's sha256 (of the unpacked
    bytes, which other cards cite) does not change."""
    model, path = tiny_release
    raw = zoo.unpack_bytes(path.read_bytes())
    path.unlink()
    (tmp_path / "tiny-clip.safetensors").write_bytes(raw)
    edit_card(tmp_path, lambda card: {k: v for k, v in card.items() if k != "packed_sha256"}
              | {"weights": "tiny-clip.safetensors"})
    before = zoo.load("tiny-clip").state_dict()
    sha = zoo.load_card("tiny-clip")["sha256"]
    zoo.pack("tiny-clip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-clip.json", "tiny-clip.safetensors.xz"]
    assert zoo.load_card("tiny-clip")["sha256"] == sha
    after = zoo.load("tiny-clip").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_packed_card_without_its_packed_sha256_is_refused(tiny_release, tmp_path):
    edit_card(tmp_path, lambda card: {k: v for k, v in card.items() if k != "packed_sha256"})
    with pytest.raises(zoo.ZooError, match="packed_sha256"):
        zoo.load("tiny-clip")


def test_the_shipped_weights_stay_under_the_design_budget():
    total = sum(p.stat().st_size for p in zoo.WEIGHTS_DIR.glob("*.safetensors*"))
    assert total < 100e6, f"released weights take {total / 1e6:.1f} MB; the design allows 100 (fp16, packed)"
