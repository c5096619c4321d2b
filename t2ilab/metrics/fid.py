"""FID-SB and KID: distances between the feature distributions of real and generated images.

Chapter "How we measure text-to-image models". Both metrics compare two sets of feature vectors (N, D); the
course computes them in the bird evaluator's 256-d feature space (`t2ilab.metrics.evaluator`), not in
Inception-v3's, and calls the result FID-SB so that nobody compares it with published Inception FIDs.

- FID, Frechet Inception Distance (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge
  to a Local Nash Equilibrium"): fit a Gaussian to each set and take the Frechet (2-Wasserstein)
  distance between the two Gaussians,

      d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

  The matrix square root follows the reference code (TTUR, pytorch-fid) and its safeguards.
- KID, Kernel Inception Distance (Binkowski et al., 2018, "Demystifying MMD GANs", Sec. 4): the unbiased
  estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over
  random subsets. Unlike FID it has an unbiased estimator, so small sample sizes do not inflate it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg
import torch


def check_features(name: str, features, min_rows: int = 2) -> torch.Tensor:
    """One feature set (N, D) -> float64 tensor (N, D); ValueError if not 2-D, too few rows or not finite."""
    features = torch.as_tensor(features)
    if features.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor (N, D) of feature vectors, got shape {tuple(features.shape)}")
    if features.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {features.shape[0]}")
    if features.shape[1] < 1:
        raise ValueError(f"{name} has no feature dimensions, shape {tuple(features.shape)}")
    if features.is_complex() or features.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers (float or int), got dtype {features.dtype}")
    features = features.detach().to(torch.float64)
    if not torch.isfinite(features).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return features


def validate_features(real_features, fake_features, min_rows: int = 2,
                      names: tuple[str, str] = ("real_features", "fake_features")) -> tuple[torch.Tensor, torch.Tensor]:
    """Two feature sets (N, D) and (M, D) -> both as float64 tensors; ValueError if unusable or D differs."""
    real = check_features(names[0], real_features, min_rows)
    fake = check_features(names[1], fake_features, min_rows)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same feature dimension D, "
                         f"got {real.shape[1]} and {fake.shape[1]}")
    return real, fake


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D), N >= 2 -> mean (D,) and covariance (D, D), float64, unbiased (N - 1 denominator)."""
    features = check_features("features", features)
    mean = features.mean(dim=0)  # (D,)
    centered = features - mean  # (N, D)
    covariance = centered.T @ centered / (features.shape[0] - 1)  # (D, D), same as np.cov(rowvar=False)
    return mean, covariance


def _as_float64_array(name: str, value, ndim: int) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Squared Frechet distance of N(mu1, sigma1), N(mu2, sigma2): means (D,), covariances (D, D) -> float >= 0."""
    mu1, mu2 = _as_float64_array("mu1", mu1, 1), _as_float64_array("mu2", mu2, 1)
    sigma1, sigma2 = _as_float64_array("sigma1", sigma1, 2), _as_float64_array("sigma2", sigma2, 2)
    dim = mu1.shape[0]
    expected_shapes = {"mu2": (dim,), "sigma1": (dim, dim), "sigma2": (dim, dim)}
    for name, array in (("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if array.shape != expected_shapes[name]:
            raise ValueError(f"{name} must have shape {expected_shapes[name]} to match mu1 of shape {(dim,)}, "
                             f"got {array.shape}")

    # 1. Tr((S1 S2)^(1/2)), the coupling term of the FID formula. S1 S2 is not symmetric, but its eigenvalues are
    #    those of S1^(1/2) S2 S1^(1/2) >= 0, so its principal square root exists and is real up to rounding.
    sqrt_product = scipy.linalg.sqrtm(sigma1 @ sigma2)
    # 2. A near-singular product (too few samples for D, dead features) can make sqrtm fail; like the reference
    #    code, regularise only inside the square root, so the trace terms below keep the covariances as given.
    if not np.isfinite(sqrt_product).all():
        offset = eps * np.eye(dim)
        sqrt_product = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    # 3. Rounding leaves tiny imaginary parts; a large one means the covariances are not valid (not PSD).
    if np.iscomplexobj(sqrt_product):
        largest_imag = np.max(np.abs(np.diagonal(sqrt_product).imag))
        if largest_imag > 1e-3:
            raise ValueError(f"matrix square root of sigma1 @ sigma2 has an imaginary component of {largest_imag:.3g} "
                             "(allowed: <= 1e-3); are both covariances symmetric positive semi-definite?")
        sqrt_product = sqrt_product.real

    # 4. d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))
    mean_diff = mu1 - mu2
    return float(mean_diff @ mean_diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(sqrt_product))


def fid(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """FID-SB: Frechet distance of Gaussians fitted to real (N, D) and fake (M, D) bird-evaluator features; >= 0."""
    real, fake = validate_features(real_features, fake_features)
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


class KIDResult(NamedTuple):
    mean: float  # average unbiased MMD^2 over subsets; can be slightly negative when the sets match
    std: float  # spread over subsets (population std, as torch-fidelity reports it)


def polynomial_mmd2(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Unbiased MMD^2 with the kernel (x.y / D + 1)^3 between all rows of real (m, D) and fake (n, D); m, n >= 2."""
    real, fake = validate_features(real_features, fake_features)
    return float(_unbiased_polynomial_mmd2(real, fake))


def _unbiased_polynomial_mmd2(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    m, n, dim = real.shape[0], fake.shape[0], real.shape[1]
    kernel_real = (real @ real.T / dim + 1.0) ** 3  # (m, m)
    kernel_fake = (fake @ fake.T / dim + 1.0) ** 3  # (n, n)
    kernel_cross = (real @ fake.T / dim + 1.0) ** 3  # (m, n)
    # MMD^2_u (Gretton et al. 2012, "A Kernel Two-Sample Test", Lemma 6), as in Binkowski et al. 2018: the unbiased
    # estimator drops the i == j terms of the within-set sums, which would otherwise bias it upwards.
    within_real = (kernel_real.sum() - kernel_real.diagonal().sum()) / (m * (m - 1))
    within_fake = (kernel_fake.sum() - kernel_fake.diagonal().sum()) / (n * (n - 1))
    return within_real + within_fake - 2.0 * kernel_cross.mean()


def kid(real_features: torch.Tensor, fake_features: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> KIDResult:
    """KID: mean and std of the unbiased polynomial-kernel MMD^2 over random subsets of real (N, D) and fake (M, D)."""
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be >= 2 (the unbiased estimator needs pairs), got {subset_size}")
    real, fake = validate_features(real_features, fake_features)
    size = min(subset_size, real.shape[0], fake.shape[0])
    generator = torch.Generator().manual_seed(seed)
    mmd2_per_subset = []
    for _ in range(num_subsets):
        real_idx = torch.randperm(real.shape[0], generator=generator)[:size]  # without replacement
        fake_idx = torch.randperm(fake.shape[0], generator=generator)[:size]
        mmd2_per_subset.append(_unbiased_polynomial_mmd2(real[real_idx], fake[fake_idx]))
    values = torch.stack(mmd2_per_subset)  # (num_subsets,)
    return KIDResult(mean=float(values.mean()), std=float(values.std(correction=0)))
