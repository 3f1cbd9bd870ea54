"""The Fréchet distance between two Gaussians, as pytorch-fid defines it, without a general sqrtm.

    d² = ‖μ1 − μ2‖² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1 Σ2)^½)

For symmetric positive semi-definite Σ1 = L Lᵀ, Σ1 Σ2 is similar to Lᵀ Σ2 L (symmetric PSD), so
tr((Σ1 Σ2)^½) = Σ √λᵢ(Lᵀ Σ2 L). L is a Cholesky factor when Σ1 is well conditioned, otherwise the
eigenvectors of Σ1 scaled by √eigenvalues, dropping its null space (its eigenvalues are exactly zero
in exact arithmetic, so rounding noise there is not summed). That is a Cholesky or one symmetric
eigendecomposition, two matrix products and one ``eigvalsh`` — several times faster than
``scipy.linalg.sqrtm`` on 2048-d and finite on singular covariances. Where the inputs are not
symmetric PSD, pytorch-fid's route (``sqrtm``, with its ``eps`` diagonal offset when the product is
singular) is used; ``sqrtm`` is called without ``disp`` so any scipy version works.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from gen_eval.errors import UserError


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """d² between N(mu1, sigma1) and N(mu2, sigma2); float64 throughout."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise UserError(
            f"statistics differ in dimension (mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}); "
            "compute both with the same feature model"
        )
    for name, value in (("mu", mu1), ("sigma", sigma1), ("mu", mu2), ("sigma", sigma2)):
        if not np.isfinite(value).all():
            raise UserError(f"statistics hold NaN/Inf in {name}; recompute them")
    diff = mu1 - mu2
    tr_covmean = trace_sqrt_product(sigma1, sigma2, eps)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """tr((sigma1 @ sigma2)^½) for covariance matrices."""
    if _is_symmetric(sigma1) and _is_symmetric(sigma2):
        value = _trace_sqrt_symmetric(sigma1, sigma2)
        if value is not None:
            return value
    return _trace_sqrt_sqrtm(sigma1, sigma2, eps)


def _is_symmetric(a: np.ndarray) -> bool:
    scale = np.abs(a).max() or 1.0
    return bool(np.abs(a - a.T).max() <= 1e-10 * scale)


def _psd_factor(sigma: np.ndarray) -> np.ndarray | None:
    """L with L @ L.T == sigma (columns may be fewer: null space dropped); None if sigma is not PSD."""
    sigma = (sigma + sigma.T) / 2
    tol = sigma.shape[0] * np.finfo(np.float64).eps * max(np.abs(np.diagonal(sigma)).max(), np.finfo(np.float64).tiny)
    try:
        factor = linalg.cholesky(sigma, lower=True, check_finite=False)
        if np.diagonal(factor).min() ** 2 > tol * 1e3:
            return factor
    except linalg.LinAlgError:
        pass
    w, v = linalg.eigh(sigma, check_finite=False, driver="evd")
    if w.min() < -1e3 * tol:  # clearly indefinite: not a covariance
        return None
    keep = w > tol
    return v[:, keep] * np.sqrt(w[keep])


def _trace_sqrt_symmetric(sigma1: np.ndarray, sigma2: np.ndarray) -> float | None:
    factor = _psd_factor(sigma1)
    if factor is None:
        return None
    if factor.shape[1] == 0:
        return 0.0
    inner = factor.T @ sigma2 @ factor
    inner = (inner + inner.T) / 2
    eigenvalues = linalg.eigvalsh(inner, check_finite=False, driver="evd")
    if eigenvalues.min() < -1e-6 * max(eigenvalues.max(), 1e-300):  # sigma2 clearly indefinite
        return None
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def _trace_sqrt_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    # scipy warns on singular products; the caller already warns when N < feature dimension, and a
    # non-finite root is handled below with pytorch-fid's offset, so the warning adds only noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise UserError(
                f"the covariances give a matrix square root with imaginary part {np.abs(covmean.imag).max():.3g}; "
                "recompute the statistics with more images"
            )
        covmean = covmean.real
    return float(np.trace(covmean))
