"""Shared building blocks: causal self-attention with padding against a hand-masked reference, the shared image
encoder's shapes, and the timestep embedding against its formula."""
import math

import pytest
import torch

from t2ilab.nn import ConvEncoder, SelfAttention, timestep_embedding


def hand_masked_attention(attn: SelfAttention, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """Multi-head attention written with loops: query i may see key j iff j <= i and j is not padding."""
    b, t, c = x.shape
    h, d = attn.heads, c // attn.heads
    q, k, v = attn.qkv(x).split(c, dim=-1)
    out = torch.zeros(b, t, c)
    for n in range(b):
        for head in range(h):
            cols = slice(head * d, (head + 1) * d)
            scores = q[n, :, cols] @ k[n, :, cols].T / math.sqrt(d)  # (T, T)
            for i in range(t):
                for j in range(t):
                    if j > i or pad_mask[n, j]:
                        scores[i, j] = float("-inf")
            out[n, :, cols] = scores.softmax(-1) @ v[n, :, cols]
    return attn.out(out)


def test_causal_self_attention_with_padding_matches_a_hand_masked_reference():
    torch.manual_seed(0)
    attn = SelfAttention(16, heads=2, causal=True).eval()
    x = torch.randn(3, 6, 16)
    pad_mask = torch.tensor([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, pad_mask), hand_masked_attention(attn, x, pad_mask), atol=1e-5, rtol=1e-5)
        # the causal property: changing a later token changes no earlier output
        changed = x.clone()
        changed[:, 4] += 1.0
        torch.testing.assert_close(attn(changed, pad_mask)[:, :4], attn(x, pad_mask)[:, :4], atol=1e-6, rtol=0)
        # without padding, the mask-free (is_causal) branch gives the same as an all-False mask
        none = torch.zeros(3, 6, dtype=torch.bool)
        torch.testing.assert_close(attn(x), attn(x, none), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("downsample_last, side", [(True, 4), (False, 8)])
def test_conv_encoder_shapes(downsample_last, side):
    encoder = ConvEncoder((8, 16, 24), emb_dim=12, downsample_last=downsample_last)
    out = encoder(torch.randn(2, 3, 32, 32), torch.randn(2, 12))
    assert out.shape == (2, 24, side, side)
    assert [k.split(".")[0] for k in encoder.state_dict()][0] == "0"  # a tower keeps its layers as body.0, body.1, ...


def test_timestep_embedding_formula():
    t = torch.tensor([0, 7, 999])
    emb = timestep_embedding(t, 8)
    freqs = [10_000 ** (-i / 4) for i in range(4)]
    expected = [[math.cos(s * f) for f in freqs] + [math.sin(s * f) for f in freqs] for s in (0, 7, 999)]
    torch.testing.assert_close(emb, torch.tensor(expected), atol=1e-4, rtol=1e-4)
