"""The VQ-VAE tokenizer: straight-through gradient and EMA codebook update against hand-computed values, k-means
start and dead-code restarts against collapse, and image -> tokens -> image shapes."""
import torch

from t2ilab.autoregressive import VQVAE, VectorQuantizer, VQVAEConfig, codebook_perplexity, kmeans


def test_straight_through_passes_the_decoders_gradient_to_the_encoder():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 3, kmeans_init=False).eval()
    z = torch.randn(2, 3, 2, 2, requires_grad=True)
    out = vq(z)
    weights = torch.randn_like(z)
    (out.quantized * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights)  # d(loss)/d(z_e) = d(loss)/d(z_q)
    codes = vq.codebook[out.indices].permute(0, 3, 1, 2)
    torch.testing.assert_close(out.quantized, codes)  # the forward value is the code itself
    torch.testing.assert_close(out.commitment, ((z - codes) ** 2).mean())


def test_ema_codebook_update_against_hand_computed_values():
    vq = VectorQuantizer(2, 1, decay=0.5, kmeans_init=False, eps=0.0)
    vq.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    vq.code_sum.copy_(vq.codebook)
    vq.cluster_size.fill_(1.0)
    z = torch.tensor([1.0, 2.0, 3.0, 9.0]).view(1, 1, 2, 2)  # three points near code 0, one near code 1
    out = vq.train()(z)
    assert out.indices.flatten().tolist() == [0, 0, 0, 1]
    # N = 0.5 * 1 + 0.5 * [3, 1] = [2, 1];  m = 0.5 * [0, 10] + 0.5 * [1 + 2 + 3, 9] = [3, 9.5];  e = m / N
    torch.testing.assert_close(vq.cluster_size, torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(vq.code_sum, torch.tensor([[3.0], [9.5]]))
    torch.testing.assert_close(vq.codebook, torch.tensor([[1.5], [9.5]]))
    assert out.perplexity.item() == torch.exp(-(0.75 * torch.log(torch.tensor(0.75)) +
                                               0.25 * torch.log(torch.tensor(0.25)))).item()


def test_a_dead_code_is_restarted_at_an_encoder_output():
    torch.manual_seed(0)
    vq = VectorQuantizer(3, 2, decay=0.5, kmeans_init=False, restart_below=0.3)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]]))  # code 2 is never chosen
    vq.code_sum.copy_(vq.codebook)
    z = torch.rand(4, 2, 3, 3)  # all within [0, 1]^2
    vq.train()(z)  # usage of code 2: 0.5 * 1 + 0 = 0.5, still alive
    assert torch.allclose(vq.codebook[2], torch.tensor([100.0, 100.0]), atol=0.01)
    vq(z)  # 0.25 < 0.3: restarted at one of this batch's encoder outputs
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    assert (flat - vq.codebook[2]).abs().sum(1).min() < 1e-6 and vq.cluster_size[2] == 1.0


def test_without_kmeans_and_restarts_the_codebook_collapses():
    torch.manual_seed(0)
    z = (torch.randn(8, 2, 8, 8) * 0.5 + 5.0)  # data far from the random initial codes
    plain = VectorQuantizer(16, 2, kmeans_init=False, restart_below=0.0).train()
    fixed = VectorQuantizer(16, 2, kmeans_init=True, restart_below=0.5).train()
    for _ in range(20):
        collapsed, alive = plain(z), fixed(z)
    assert collapsed.used_share.item() <= 2 / 16 and collapsed.perplexity.item() < 2
    assert alive.used_share.item() == 1.0 and alive.perplexity.item() > 10


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in centres])
    found = kmeans(points, 3)
    assert torch.cdist(centres, found).min(1).values.max() < 0.1


def test_image_to_tokens_to_image_shapes():
    for channels, grid in (((8, 16), 8), ((16,), 16)):
        model = VQVAE(VQVAEConfig(channels=channels, code_dim=4, num_codes=8, res_blocks=1))
        images = torch.rand(3, 3, 32, 32) * 2 - 1
        tokens = model.eval().encode(images)
        assert tokens.shape == (3, grid, grid) and tokens.dtype == torch.long and model.tokens_per_image == grid ** 2
        assert model.decode(tokens).shape == (3, 3, 32, 32) and model.decode(tokens.flatten(1)).shape == (3, 3, 32, 32)
        torch.testing.assert_close(model.decode(tokens), model(images).reconstruction)
        assert model.encode_latents(images).shape == (3, 4, grid, grid)
    assert abs(codebook_perplexity(torch.tensor([0, 1, 2, 3]), 8) - 4.0) < 1e-6
