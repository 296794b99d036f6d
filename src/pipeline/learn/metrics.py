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


#: Fractions of a Gaussian within 1 and 2 standard deviations of its mean.
GAUSSIAN_WITHIN = {"within_1sd": 0.6827, "within_2sd": 0.9545}


def calibration(pred_ms: np.ndarray, sd_ms: np.ndarray, true_ms: np.ndarray) -> dict[str, Any]:
    """How well an ensemble's spread matches its errors.

    Parameters
    ----------
    pred_ms, sd_ms, true_ms
        (N, 75) predicted mean, members' standard deviation and true activation (ms).
        Entries where any of them is NaN are skipped.

    Returns
    -------
    dict
        ``within_1sd``, ``within_2sd``: fraction of |error| <= 1 and 2 SD (a calibrated
        Gaussian spread gives 0.683 and 0.954, see ``gaussian``); ``mean_sd_ms``;
        ``mae_ms``; ``sd_scale_68``: the factor by which the SDs would have to be multiplied
        for 68.3 % coverage (1 = calibrated, > 1 over-confident); ``rank_corr``: Spearman
        correlation of SD and |error| over entries (does a larger spread mean a larger
        error?); ``n``: entries used.
    """
    pred, sd, true = (np.asarray(a, np.float64).ravel() for a in (pred_ms, sd_ms, true_ms))
    ok = np.isfinite(pred) & np.isfinite(sd) & np.isfinite(true)
    err, sd = np.abs(pred[ok] - true[ok]), sd[ok]
    if err.size == 0:
        return {"within_1sd": None, "within_2sd": None, "mean_sd_ms": None, "mae_ms": None,
                "sd_scale_68": None, "rank_corr": None, "n": 0, "gaussian": GAUSSIAN_WITHIN}
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sd > 0, err / sd, np.where(err > 0, np.inf, 0.0))
    ranks = [np.argsort(np.argsort(v, kind="stable"), kind="stable") for v in (sd, err)]
    rc = np.corrcoef(*ranks)[0, 1] if err.size > 1 and np.ptp(sd) > 0 and np.ptp(err) > 0 \
        else np.nan
    return {"within_1sd": float(np.mean(err <= sd)), "within_2sd": float(np.mean(err <= 2 * sd)),
            "mean_sd_ms": float(sd.mean()), "mae_ms": float(err.mean()),
            "sd_scale_68": _finite_or_none(float(np.quantile(ratio, GAUSSIAN_WITHIN["within_1sd"]))),
            "rank_corr": _finite_or_none(float(rc)), "n": int(err.size),
            "gaussian": GAUSSIAN_WITHIN}


def heart_breakdown(pred_ms: np.ndarray, true_ms: np.ndarray, hearts: list[str],
                    train_hearts: set[str], record_ms: float | None = None) -> dict[str, Any]:
    """Activation MAE on samples of hearts seen in training and of unseen hearts.

    Parameters
    ----------
    pred_ms, true_ms
        (N, 75) activation times (ms) of one split.
    hearts
        (N,) heart (anatomy) name of each sample.
    train_hearts
        Hearts with samples in the training split.

    Returns
    -------
    dict
        ``seen_mae_ms`` and ``unseen_mae_ms`` (None when the split has no such sample),
        ``n_seen``, ``n_unseen`` (samples) and ``per_heart_mae_ms`` {heart: MAE}.
    """
    names = np.asarray(hearts, dtype=object)
    seen = np.array([h in train_hearts for h in names], dtype=bool)
    out: dict[str, Any] = {"n_seen": int(seen.sum()), "n_unseen": int((~seen).sum())}
    for key, mask in (("seen_mae_ms", seen), ("unseen_mae_ms", ~seen)):
        out[key] = (activation_metrics(pred_ms[mask], true_ms[mask], record_ms)
                    ["activation_mae_ms"] if mask.any() else None)
    out["per_heart_mae_ms"] = {
        str(h): activation_metrics(pred_ms[names == h], true_ms[names == h],
                                   record_ms)["activation_mae_ms"]
        for h in sorted(set(names.tolist()))}
    return out
