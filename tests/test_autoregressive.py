"""The GPT and the DALL-E-style model: causality, the KV cache against recomputation, CFG on logits at scales
0 and 1, top-k / top-p against hand-computed cases, and clear errors for captions it cannot read."""
import pytest
import torch

from t2ilab.autoregressive import DalleConfig, DalleGPT, choose_tokens, caption_ids, filter_logits
from t2ilab.guidance import classifier_free


def tiny_dalle(**kw) -> DalleGPT:
    torch.manual_seed(0)
    return DalleGPT(DalleConfig(text_vocab=20, text_length=6, image_vocab=10, image_tokens=5, dim=32, layers=2,
                                heads=2, **kw)).eval()


def captions(batch=3):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 20, (batch, 6), generator=g)
    ids[:, 0] = 2
    ids[1, 4:] = 0  # a shorter caption: padding
    return ids


def test_changing_a_later_token_changes_no_earlier_logit():
    model = tiny_dalle()
    text, image = captions(), torch.randint(10, (3, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        text_logits, image_logits = model(text, image)
        changed = image.clone()
        changed[:, 3] = (changed[:, 3] + 1) % 10
        _, changed_logits = model(text, changed)
    # image logits at position j depend on tokens < j only: positions 0..3 see the same inputs
    torch.testing.assert_close(changed_logits[:, :4], image_logits[:, :4], rtol=0, atol=1e-6)
    assert not torch.allclose(changed_logits[:, 4], image_logits[:, 4])
    # and padding in the caption is invisible: changing a padded id changes nothing
    padded = text.clone()
    padded[1, 5] = 0
    with torch.no_grad():
        torch.testing.assert_close(model(padded, image)[1], image_logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_the_kv_cache_draws_the_same_tokens_as_recomputing(scale):
    model = tiny_dalle()
    text = captions()
    greedy = [model.generate(text, guidance_scale=scale, temperature=0, use_cache=c) for c in (True, False)]
    assert torch.equal(greedy[0], greedy[1]) and greedy[0].shape == (3, 5)
    sampled = [model.generate(text, torch.Generator().manual_seed(5), scale, temperature=1.0, use_cache=c)
               for c in (True, False)]
    assert torch.equal(sampled[0], sampled[1])  # the same logits, so the same draws from the same generator


def test_cfg_on_logits_at_scales_zero_and_one():
    model = tiny_dalle()
    text, prefix = captions(), torch.randint(10, (3, 2), generator=torch.Generator().manual_seed(3))
    null = model.null_text(3)
    with torch.no_grad():
        cond, uncond = model.next_token_logits(prefix, text), model.next_token_logits(prefix, null)
        torch.testing.assert_close(classifier_free(model.next_token_logits, text, null, 1.0)(prefix), cond)
        torch.testing.assert_close(classifier_free(model.next_token_logits, text, null, 0.0)(prefix), uncond)
        torch.testing.assert_close(classifier_free(model.next_token_logits, text, null, 2.5)(prefix),
                                   uncond + 2.5 * (cond - uncond), rtol=1e-5, atol=1e-5)


def test_top_k_and_top_p_against_hand_computed_cases():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    kept = lambda out: torch.isfinite(out)[0].tolist()
    assert kept(filter_logits(logits, top_k=2)) == [True, True, False, False, False]
    assert kept(filter_logits(logits, top_p=0.6)) == [True, True, False, False, False]  # 0.5 < 0.6 <= 0.7
    assert kept(filter_logits(logits, top_p=0.5)) == [True, False, False, False, False]
    assert kept(filter_logits(logits, top_p=0.86)) == [True, True, True, True, False]  # 0.85 < 0.86
    assert kept(filter_logits(logits)) == [True] * 5
    assert choose_tokens(logits, temperature=0).item() == 0
    draws = torch.stack([choose_tokens(logits.expand(4000, 5), torch.Generator().manual_seed(0), top_k=2)])
    share = (draws == 0).float().mean().item()
    assert abs(share - 0.5 / 0.7) < 0.03 and set(draws.unique().tolist()) == {0, 1}


class Pieces:
    """A stand-in tokenizer: one id per character, unknown for '#'."""

    def unknown_words(self, text):
        return [w for w in text.split() if "#" in w]

    def encode(self, text):
        return [4 + (ord(c) % 10) for c in text]


@pytest.mark.parametrize("bad, message", [
    (["a bird", "   "], "caption 1 is empty"),
    (["a b#rd"], r"caption 0 \('a b#rd'\) has characters the tokenizer never saw in: \['b#rd'\]"),
    (["a very long caption"], "caption 0 is 21 tokens long .* at most 8"),
    ("a bird", "expected a list of captions, got one string"),
])
def test_captions_the_model_cannot_read_are_refused_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        caption_ids(Pieces(), bad, 8)
    assert caption_ids(Pieces(), ["ab"], 6).tolist() == [[2, 11, 12, 3, 0, 0]]


def test_clipgen_cache_equals_recomputation_and_the_bridge_crosses_the_gap():
    from t2ilab.autoregressive import ClipGenConfig, ClipGenGPT, noisy_condition

    torch.manual_seed(0)
    model = ClipGenGPT(ClipGenConfig(embed_dim=8, prefix_tokens=2, image_vocab=10, image_tokens=5, dim=16, layers=2,
                                     heads=2)).eval()
    emb = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    for scale in (1.0, 3.0):
        assert torch.equal(model.generate(emb, guidance_scale=scale, temperature=0),
                           model.generate(emb, guidance_scale=scale, temperature=0, use_cache=False))
    # the bridge maps the text mean onto the direction of the image mean
    model.image_mean.copy_(torch.nn.functional.normalize(torch.ones(8), dim=0) * 0.5)
    model.text_mean.copy_(-model.image_mean)
    bridged = model.bridge(model.text_mean[None])
    torch.testing.assert_close(bridged, torch.nn.functional.normalize(model.image_mean[None], dim=-1))
    blurred = noisy_condition(emb, 0.3, torch.Generator().manual_seed(0))
    assert torch.allclose(blurred.norm(dim=-1), torch.ones(3)) and not torch.allclose(blurred, emb)
    assert torch.equal(noisy_condition(emb, 0.0), emb)
    # a dropped row reads the null prefix: its logits do not depend on the embedding
    ids = torch.randint(10, (3, 5))
    dropped = torch.tensor([True, False, False])
    a = model(emb, ids, dropped)
    b = model(-emb, ids, dropped)
    torch.testing.assert_close(a[0], b[0]) and not torch.allclose(a[1], b[1])


def test_decode_and_rerank_keeps_the_candidate_clip_scores_highest():
    """DALL-E's reranking: of k decoded candidates per caption, the one whose mini-CLIP image embedding has the
    largest cosine with its caption's embedding, checked against a direct computation."""
    from t2ilab.clip import embed_captions, embed_images
    from t2ilab.recipes.autoregressive import TokenSampling, decode_and_rerank
    from t2ilab.recipes.base import frozen_clip
    from t2ilab.recipes.image_tokenizer import TINY_TOKENIZER, load_image_tokenizer

    vqvae = load_image_tokenizer(TINY_TOKENIZER)
    side = vqvae.tokens_per_image ** 0.5

    def codes(captions, k, generator):  # random token grids, k per caption
        return torch.randint(16, (len(captions) * k, int(side), int(side)), generator=generator)

    captions = ["a small bird with a red crown", "a large bird with blue wings"]
    chosen = decode_and_rerank(codes, vqvae, TokenSampling(rerank=3), "cpu")(captions, torch.Generator().manual_seed(0))
    candidates = vqvae.decode(codes(captions, 3, torch.Generator().manual_seed(0))).clamp(-1, 1)
    clip = frozen_clip("cpu")
    cosines = (embed_images(clip, candidates).view(2, 3, -1) * embed_captions(clip, captions)[:, None]).sum(-1)
    expected = candidates.view(2, 3, *candidates.shape[1:])[torch.arange(2), cosines.argmax(1)]
    assert chosen.shape == (2, 3, 32, 32) and torch.allclose(chosen, expected)
    single = decode_and_rerank(codes, vqvae, TokenSampling(rerank=1), "cpu")(captions, torch.Generator().manual_seed(0))
    assert torch.allclose(single, vqvae.decode(codes(captions, 1, torch.Generator().manual_seed(0))).clamp(-1, 1))
