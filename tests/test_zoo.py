"""The model zoo: fp16 safetensors + card round trip, sha256 checks with clear errors, the table."""
import json

import pytest
import torch

from t2ilab import zoo
from t2ilab.clip import CLIPConfig, MiniCLIP


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
    assert card["sha256"] == zoo.sha256_file(path) and card["dtype"] == "float16"
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


def test_card_class_must_be_ours(tiny_release, tmp_path):
    card_path = tmp_path / "tiny-clip.json"
    card = json.loads(card_path.read_text())
    card["class"] = "os.system"
    card_path.write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match="not part of t2ilab"):
        zoo.load("tiny-clip")


def test_every_released_model_loads_and_its_card_is_complete():
    """The shipped zoo: weights match their sha256, and each card names how it was trained and measured."""
    names = zoo.available()
    assert {"evaluator-birds", "clip-birds", "diffusion-uncond-birds32", "diffusion-text-birds32",
            "noisy-classifier-birds32", "noisy-clip-birds32"} <= set(names)
    for name in names:
        card = zoo.load_card(name)
        assert card["command"].startswith(f"t2ilab train {name}"), name
        assert len(card["commit"]) >= 40 and "dirty" not in card["commit"], name
        assert card["wall_seconds"] > 0 and card["steps"] > 0 and card["parameters"] > 0, name
        model = zoo.load(name)
        assert sum(p.numel() for p in model.parameters()) == card["parameters"], name
        metrics = card["metrics"]
        if name.startswith("diffusion-"):  # generators are measured at the protocol's N
            assert metrics["n"] >= 2000 and 0 <= metrics["attribute_accuracy"] <= 1, name
        if name.startswith("noisy-"):  # judges: the guided generator is measured at the protocol's N
            assert metrics["guided_n"] >= 2000 and 0 <= metrics["guided_attribute_accuracy"] <= 1, name
