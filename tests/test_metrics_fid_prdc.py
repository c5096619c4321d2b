"""FID-SB, KID, precision/recall and density/coverage: known answers and independent brute-force references."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from t2ilab.metrics import (density_coverage, feature_stats, fid, frechet_distance, kid, polynomial_mmd2,
                            precision_recall)
from t2ilab.metrics import prdc as prdc_module


def gaussian(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def random_spd(dim: int, rng: np.random.Generator) -> np.ndarray:
    factor = rng.standard_normal((dim, dim))
    return factor @ factor.T + 0.1 * np.eye(dim)


# ---------------------------------------------------------------- Frechet distance and FID-SB


def test_frechet_distance_of_1d_gaussians():
    mu1, var1, mu2, var2 = 0.3, 2.0, -1.2, 0.5
    expected = (mu1 - mu2) ** 2 + var1 + var2 - 2 * math.sqrt(var1 * var2)  # = 2.75
    as_tensor = lambda value: torch.tensor(value, dtype=torch.float64)  # noqa: E731
    got = frechet_distance(as_tensor([mu1]), as_tensor([[var1]]), as_tensor([mu2]), as_tensor([[var2]]))
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12) and expected == pytest.approx(2.75)


def test_frechet_distance_of_commuting_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    var1, var2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_eigendecomposition_reference(seed):
    # Independent route: Tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), all symmetric, via eigh only.
    rng = np.random.default_rng(seed)
    dim = 12
    sigma1, sigma2 = random_spd(dim, rng), random_spd(dim, rng)
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    eigvals1, eigvecs1 = scipy.linalg.eigh(sigma1)
    sqrt_sigma1 = eigvecs1 @ np.diag(np.sqrt(eigvals1)) @ eigvecs1.T
    middle_eigvals = scipy.linalg.eigh(sqrt_sigma1 @ sigma2 @ sqrt_sigma1, eigvals_only=True)
    trace_sqrt = np.sum(np.sqrt(np.clip(middle_eigvals, 0.0, None)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    got = frechet_distance(torch.from_numpy(mu1), torch.from_numpy(sigma1), torch.from_numpy(mu2),
                           torch.from_numpy(sigma2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_feature_stats_match_numpy():
    features = gaussian(50, 4, seed=3).float()
    mean, covariance = feature_stats(features)
    assert mean.dtype == covariance.dtype == torch.float64 and covariance.shape == (4, 4)
    np.testing.assert_allclose(mean.numpy(), features.double().numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(covariance.numpy(), np.cov(features.double().numpy(), rowvar=False), rtol=1e-10)


def test_fid_zero_for_identical_sets_and_grows_with_shift():
    real = gaussian(4000, 8, seed=0)
    assert abs(fid(real, real)) < 1e-8
    shifts = [0.0, 0.25, 0.5, 1.0, 2.0]
    fakes = [gaussian(4000, 8, seed=1, shift=s) for s in shifts]
    scores = [fid(real, fake) for fake in fakes]
    assert scores[0] < 0.05  # two samples of one Gaussian: only finite-sample noise
    assert all(a < b for a, b in zip(scores, scores[1:]))
    # A shift leaves the sample covariance unchanged, so FID minus the squared mean difference stays constant.
    covariance_terms = [score - float(((real.mean(0) - fake.mean(0)) ** 2).sum()) for score, fake in zip(scores, fakes)]
    assert covariance_terms == pytest.approx([covariance_terms[0]] * len(shifts), abs=1e-9)


def test_frechet_distance_regularises_a_failed_square_root(monkeypatch):
    calls, real_sqrtm = [], scipy.linalg.sqrtm

    def sqrtm_that_fails_once(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_that_fails_once)
    sigma = np.diag([1.0, 4.0])
    got = frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma, eps=1e-6)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (sigma + 1e-6 * np.eye(2)) @ (sigma + 1e-6 * np.eye(2)))
    assert abs(got) < 1e-5  # eps only moves the square root by O(eps)


def test_fid_with_fewer_samples_than_dimensions_is_finite():
    assert math.isfinite(fid(gaussian(5, 10, seed=0), gaussian(5, 10, seed=1)))


def test_frechet_distance_rejects_an_imaginary_square_root():
    # sigma1 is not PSD: (S1 S2)^(1/2) = diag(1, i) has an imaginary diagonal.
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


# ---------------------------------------------------------------- KID


def brute_force_mmd2(real: np.ndarray, fake: np.ndarray) -> float:
    dim = real.shape[1]

    def kernel(a, b):
        return (float(np.dot(a, b)) / dim + 1.0) ** 3

    m, n = len(real), len(fake)
    within_real = sum(kernel(real[i], real[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_fake = sum(kernel(fake[i], fake[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    cross = sum(kernel(real[i], fake[j]) for i in range(m) for j in range(n)) / (m * n)
    return within_real + within_fake - 2 * cross


def test_polynomial_mmd2_matches_double_loop():
    real, fake = gaussian(6, 3, seed=0), gaussian(7, 3, seed=1, shift=0.5)
    assert polynomial_mmd2(real, fake) == pytest.approx(brute_force_mmd2(real.numpy(), fake.numpy()), rel=1e-10)


def test_kid_with_one_subset_of_all_points_matches_double_loop():
    real, fake = gaussian(6, 3, seed=0), gaussian(6, 3, seed=1, shift=0.5)
    result = kid(real, fake, num_subsets=3, subset_size=1000)  # subset size becomes 6: every subset is everything
    assert result.mean == pytest.approx(brute_force_mmd2(real.numpy(), fake.numpy()), rel=1e-10)
    assert result.std < 1e-12


def test_kid_near_zero_for_same_distribution_and_positive_for_shifted():
    real = gaussian(1000, 16, seed=0)
    same = kid(real, gaussian(1000, 16, seed=1), num_subsets=5, subset_size=500)
    shifted = kid(real, gaussian(1000, 16, seed=2, shift=0.5), num_subsets=5, subset_size=500)
    assert abs(same.mean) < 0.01
    assert shifted.mean > 0.1 and shifted.mean > 10 * shifted.std
    assert shifted.mean > 20 * abs(same.mean)


def test_kid_is_deterministic_given_seed():
    real, fake = gaussian(300, 8, seed=0), gaussian(300, 8, seed=1)
    first, again, other_seed = (kid(real, fake, num_subsets=3, subset_size=50, seed=seed) for seed in (3, 3, 4))
    assert first == again and first != other_seed


# ---------------------------------------------------------------- precision / recall, density / coverage


def brute_force_radii(points: np.ndarray, k: int) -> np.ndarray:
    radii = []
    for i in range(len(points)):
        others = sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)
        radii.append(others[k - 1])
    return np.array(radii)


def brute_force_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    real_radii, fake_radii = brute_force_radii(real, k), brute_force_radii(fake, k)
    in_real_ball = [[np.linalg.norm(f - r) <= rad for r, rad in zip(real, real_radii)] for f in fake]  # (M, N)
    in_fake_ball = [[np.linalg.norm(r - f) <= rad for f, rad in zip(fake, fake_radii)] for r in real]  # (N, M)
    precision = sum(any(row) for row in in_real_ball) / len(fake)
    recall = sum(any(row) for row in in_fake_ball) / len(real)
    density = sum(sum(row) for row in in_real_ball) / (k * len(fake))
    coverage = sum(any(in_real_ball[j][i] for j in range(len(fake))) for i in range(len(real))) / len(real)
    return precision, recall, density, coverage


@pytest.mark.parametrize("rows_per_block", [2048, 7])
def test_prdc_match_brute_force(monkeypatch, rows_per_block):
    monkeypatch.setattr(prdc_module, "ROWS_PER_BLOCK", rows_per_block)  # 7 exercises the block boundaries
    real, fake = gaussian(30, 4, seed=0), gaussian(25, 4, seed=1, shift=0.3)
    for k in (1, 4):
        precision, recall, density, coverage = brute_force_prdc(real.numpy(), fake.numpy(), k)
        assert tuple(precision_recall(real, fake, k=k)) == pytest.approx((precision, recall), abs=1e-12)
        assert tuple(density_coverage(real, fake, k=k)) == pytest.approx((density, coverage), abs=1e-12)


def test_precision_recall_known_cases():
    real = gaussian(200, 4, seed=0)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real, gaussian(200, 4, seed=1, shift=100.0)) == (0.0, 0.0)
    collapsed = real[:3].repeat(20, 1)  # 60 fakes, all copies of three real points
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05


def test_density_coverage_same_distribution_and_mode_collapse():
    real = gaussian(2000, 8, seed=0)
    density, coverage = density_coverage(real, gaussian(2000, 8, seed=1))
    assert density == pytest.approx(1.0, abs=0.1)  # E[density] = 1 exactly for matching distributions
    assert coverage > 0.9  # about 1 - 2^-k = 0.97 for k = 5 and equal set sizes (Naeem et al. 2020)
    collapsed = real[0] + 0.01 * gaussian(2000, 8, seed=2)  # every fake near one real point
    density, coverage = density_coverage(real, collapsed)
    assert coverage < 0.01 and density > 0.0


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_value_error():
    good = gaussian(10, 3, seed=0)
    with pytest.raises(ValueError, match="2-D"):
        fid(good[:, 0], good)
    with pytest.raises(ValueError, match="same feature dimension"):
        kid(good, gaussian(10, 4, seed=1))
    with pytest.raises(ValueError, match="at least 2 rows"):
        fid(good, good[:1])
    with pytest.raises(ValueError, match="NaN"):
        precision_recall(good, torch.full((10, 3), float("nan")))
    with pytest.raises(ValueError, match=r"k must be in \[1, N - 1\]"):
        precision_recall(good, good, k=10)
    with pytest.raises(ValueError, match=r"k must be in \[1, N - 1\]"):
        density_coverage(good, good, k=0)
    with pytest.raises(ValueError, match="num_subsets"):
        kid(good, good, num_subsets=0)
    with pytest.raises(ValueError, match="subset_size"):
        kid(good, good, subset_size=1)
    with pytest.raises(ValueError, match="sigma2 must have shape"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="features"):
        feature_stats(torch.zeros(2, 3, 4))
