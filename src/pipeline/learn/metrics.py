"""Metrics of DESIGN.md section 7 and the two trivial baselines (training mean, ridge).

Per split: ``activation_mae_ms`` (mean absolute error over all points and samples),
``activation_sd_ms`` (mean over samples of the per-sample standard deviation of the absolute
error: the paper's "mean standard deviation"), ``per_point_mae_ms`` (75); for Vm outputs also
``vm_pearson_r`` (Pearson r between true and predicted Vm(t), mean over samples and points)
and ``apd90_mae_ms``. Points whose true label is NaN (never activated) are left out; a
predicted Vm that never crosses 0 mV counts as activating at the end of the record.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.learn.data import apd90

log = logging.getLogger(__name__)

RIDGE_ALPHAS: tuple[float, ...] = tuple(10.0 ** k for k in range(-3, 6))
#: ECG samples averaged into one ridge feature (1 ms each).
RIDGE_BIN = 5


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def activation_metrics(pred_ms: np.ndarray, true_ms: np.ndarray,
                       record_ms: float | None = None) -> dict[str, Any]:
    """MAE, mean per-sample SD and per-point MAE of activation times.

    Parameters
    ----------
    pred_ms, true_ms
        (N, 75) in ms. NaN in ``true_ms`` is skipped; NaN in ``pred_ms`` becomes
        ``record_ms`` (or the error is skipped when it is None).
    """
    pred = np.asarray(pred_ms, dtype=np.float64)
    true = np.asarray(true_ms, dtype=np.float64)
    if record_ms is not None:
        pred = np.where(np.isnan(pred), record_ms, pred)
    err = np.abs(pred - true)
    if err.size == 0 or not np.isfinite(err).any():
        return {"activation_mae_ms": None, "activation_sd_ms": None,
                "per_point_mae_ms": [None] * true.shape[-1]}
    with np.errstate(invalid="ignore"), _quiet():
        per_sample_sd = np.nanstd(err, axis=1)
        per_point = np.nanmean(err, axis=0)
    return {"activation_mae_ms": float(np.nanmean(err)),
            "activation_sd_ms": float(np.nanmean(per_sample_sd)),
            "per_point_mae_ms": [_finite_or_none(v) for v in per_point]}


def vm_metrics(pred_mV: np.ndarray, true_mV: np.ndarray, dt_ms: float = 1.0) -> dict[str, Any]:
    """Pearson r of Vm(t) and APD90 MAE.

    Parameters
    ----------
    pred_mV, true_mV
        (N, 75, T) in mV. Constant traces (r undefined) are skipped.
    """
    p = np.asarray(pred_mV, dtype=np.float64)
    t = np.asarray(true_mV, dtype=np.float64)
    if p.size == 0:
        return {"vm_pearson_r": None, "apd90_mae_ms": None}
    pc = p - p.mean(-1, keepdims=True)
    tc = t - t.mean(-1, keepdims=True)
    den = np.sqrt((pc ** 2).sum(-1) * (tc ** 2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (pc * tc).sum(-1) / den, np.nan)
    apd_err = np.abs(apd90(p, dt_ms) - apd90(t, dt_ms))
    with _quiet():
        return {"vm_pearson_r": _finite_or_none(np.nanmean(r)),
                "apd90_mae_ms": _finite_or_none(np.nanmean(apd_err))}


class _quiet:
    """Silence NumPy's 'mean of empty slice' warnings inside a block."""

    def __enter__(self) -> None:
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def ridge_features(ecg_scaled: np.ndarray) -> np.ndarray:
    """Ridge inputs: the scaled ECG averaged over bins of :data:`RIDGE_BIN` ms, flattened.

    Parameters
    ----------
    ecg_scaled
        (N, 12, T) -> returns (N, 12 * floor(T / RIDGE_BIN)).
    """
    n, leads, t_len = ecg_scaled.shape
    nb = t_len // RIDGE_BIN
    x = ecg_scaled[..., :nb * RIDGE_BIN].reshape(n, leads, nb, RIDGE_BIN).mean(-1)
    return x.reshape(n, -1).astype(np.float64)


class Ridge:
    """Ridge regression ``y = b + (x - mu) / sd @ W`` with alpha chosen on validation.

    Solved through the SVD of the standardised training features, so every alpha of
    :data:`RIDGE_ALPHAS` costs one small product. NaN targets are replaced by the
    training mean of their column before fitting.
    """

    def fit(self, x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray,
            y_va: np.ndarray) -> Ridge:
        self.mu = x_tr.mean(0)
        self.sd = x_tr.std(0) + 1e-8
        with _quiet():
            self.b = np.nanmean(y_tr, axis=0)
        self.b = np.nan_to_num(self.b)
        yc = np.where(np.isnan(y_tr), self.b, y_tr) - self.b
        u, s, vt = np.linalg.svd((x_tr - self.mu) / self.sd, full_matrices=False)
        uty = u.T @ yc
        xv = (x_va - self.mu) / self.sd
        best = (np.inf, RIDGE_ALPHAS[0])
        for alpha in RIDGE_ALPHAS:
            w = vt.T @ ((s / (s ** 2 + alpha))[:, None] * uty)
            err = xv @ w + self.b - y_va
            mse = float(np.nanmean(err ** 2)) if np.isfinite(err).any() else np.inf
            if mse < best[0]:
                best = (mse, alpha)
        self.alpha = best[1]
        self.w = vt.T @ ((s / (s ** 2 + self.alpha))[:, None] * uty)
        log.info("ridge baseline: alpha = %g (validation MSE %.4g)", self.alpha, best[0])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mu) / self.sd @ self.w + self.b
