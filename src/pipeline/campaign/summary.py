"""Summary of a dataset file: counts, ranges, and a figure of parameters and labels."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.io import atomic_path, write_json
from pipeline.signals.criteria import CRITERIA, morphology

log = logging.getLogger(__name__)

#: Categorical parameters counted (when present), and continuous ones histogrammed.
CATEGORICAL: tuple[str, ...] = ("anatomy", "pattern", "gkr_scale", "bcl_ms")
CONTINUOUS: tuple[str, ...] = ("sigma_l", "sigma_t", "sigma_fast_endo", "site_delay_max_ms")


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _stats(values: np.ndarray) -> dict[str, float | int]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"n_nan": int(values.size)}
    return {"min": float(finite.min()), "median": float(np.median(finite)),
            "max": float(finite.max()), "n_nan": int(values.size - finite.size)}


def summarise(path: str | Path) -> dict[str, Any]:
    """Counts and ranges of a dataset file.

    Returns
    -------
    dict
        ``n``, ``n_samples``, ``dt_ms``, ``splits`` (sizes), ``counts`` (per categorical
        parameter), ``ranges`` (min/median/max/NaN count of every numeric parameter and
        label), ``qrs_ms`` (per-sample spread of activation: max - min over the points),
        ``ecg_peak_to_peak_mV`` (per-sample largest lead amplitude) and ``criteria``: per
        activation pattern that has textbook criteria
        (:data:`pipeline.signals.criteria.CRITERIA`), how many of its samples' ECGs meet
        each criterion and all of them, with their QRS duration and frontal axis (see
        :class:`CriteriaTally`).
    """
    with h5py.File(path, "r") as h5:
        n, _, t = h5["ecg"].shape
        out: dict[str, Any] = {"file": str(path), "n": int(n), "n_samples": int(t),
                               "dt_ms": float(h5.attrs["dt_ms"]),
                               "splits": {k: int(v.shape[0])
                                          for k, v in h5.get("split", {}).items()},
                               "counts": {}, "ranges": {}}
        for key, dset in h5.get("params", {}).items():
            raw = dset[()]
            if dset.dtype.kind in "OS" or key in CATEGORICAL:
                values = _strings(raw) if dset.dtype.kind in "OS" else [f"{v:g}" for v in raw]
                if key in CATEGORICAL or len(set(values)) <= 20:
                    out["counts"][key] = dict(sorted(Counter(values).items()))
            if dset.dtype.kind in "fiu":
                out["ranges"][key] = _stats(np.asarray(raw, dtype=np.float64))
        act = h5["activation_ms"][()].astype(np.float64)
        for name in ("activation_ms", "activation_label_ms", "apd90_ms"):
            if name in h5:
                out["ranges"][name] = _stats(h5[name][()].astype(np.float64).ravel())
        spread = np.full(n, np.nan)
        ok = np.isfinite(act).any(axis=1)
        spread[ok] = np.nanmax(act[ok], axis=1) - np.nanmin(act[ok], axis=1)
        out["qrs_ms"] = _stats(spread)
        patterns = _strings(h5["params/pattern"][()]) if "params/pattern" in h5 else [""] * n
        tally = CriteriaTally(float(h5.attrs["dt_ms"]))
        p2p = np.empty(n)
        for start in range(0, n, 256):
            ecg = h5["ecg"][start:start + 256]
            p2p[start:start + len(ecg)] = (ecg.max(axis=2) - ecg.min(axis=2)).max(axis=1)
            for k, beat in enumerate(ecg):
                tally.add(patterns[start + k], beat)
        out["ecg_peak_to_peak_mV"] = _stats(p2p)
        out["criteria"] = tally.result()
    return out


class CriteriaTally:
    """Counts, per activation pattern with textbook criteria, the samples whose ECG meets
    each criterion and all of them (:mod:`pipeline.signals.criteria`), and collects their
    QRS durations (ms) and frontal axes (deg). A beat the criteria cannot read (a
    non-finite ECG, or one whose reading fails) is counted as ``unreadable``.

    Parameters
    ----------
    dt_ms
        Sampling interval of the ECGs (ms).
    """

    def __init__(self, dt_ms: float) -> None:
        self.dt_ms = dt_ms
        self._rows: dict[str, list[tuple[dict[str, bool], float, float]]] = {}
        self._unreadable: Counter[str] = Counter()

    def add(self, pattern: str, ecg: np.ndarray) -> None:
        """One sample's ECG ``(12, T)`` mV; ignored for a pattern without criteria."""
        if pattern not in CRITERIA:
            return
        self._rows.setdefault(pattern, [])
        try:
            if not np.isfinite(ecg).all():
                raise ValueError("non-finite ECG")
            m = morphology(np.asarray(ecg, dtype=np.float64), self.dt_ms)
            found = CRITERIA[pattern](m)
        except (ValueError, IndexError) as err:
            log.debug("criteria: a %s beat is unreadable (%s)", pattern, err)
            self._unreadable[pattern] += 1
            return
        self._rows[pattern].append((found, m.qrs_ms, m.frontal_axis_deg))

    def result(self) -> dict[str, dict[str, Any]]:
        """Per pattern: ``n``, ``all_met``, ``met`` (per criterion), ``all_met_but`` (per
        criterion, the beats that meet every other one, whether or not they meet it),
        ``unreadable``, ``qrs_ms`` and ``axis_deg`` (min/median/max)."""
        out = {}
        for pattern, rows in sorted(self._rows.items()):
            names = list(rows[0][0]) if rows else []
            out[pattern] = {
                "n": len(rows) + self._unreadable[pattern],
                "all_met": sum(all(found.values()) for found, _, _ in rows),
                "met": {c: sum(found[c] for found, _, _ in rows) for c in names},
                "all_met_but": {c: sum(all(v for k, v in found.items() if k != c)
                                       for found, _, _ in rows) for c in names},
                "unreadable": self._unreadable[pattern],
                "qrs_ms": _stats(np.array([q for _, q, _ in rows], dtype=np.float64)),
                "axis_deg": _stats(np.array([a for _, _, a in rows], dtype=np.float64))}
        return out


def plot_summary(path: str | Path, figure: str | Path) -> Path:
    """Figure of the parameter distributions and the labels of a dataset file (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with h5py.File(path, "r") as h5:
        params = {k: h5["params"][k][()] for k in h5.get("params", {})}
        act = h5["activation_ms"][()].astype(np.float64)
        apd = h5["apd90_ms"][()].astype(np.float64)
        n = act.shape[0]
    panels: list[tuple[str, str, Any]] = []
    for key in CATEGORICAL:
        if key in params:
            raw = params[key]
            values = _strings(raw) if raw.dtype.kind in "OS" else [f"{v:g}" for v in raw]
            panels.append(("bar", key, Counter(values)))
    for key in CONTINUOUS:
        if key in params:
            panels.append(("hist", key, np.asarray(params[key], dtype=np.float64)))
    panels.append(("hist", "activation_ms (all points)", act[np.isfinite(act)]))
    panels.append(("hist", "apd90_ms (all points)", apd[np.isfinite(apd)]))
    spread = np.nanmax(np.where(np.isfinite(act), act, -np.inf), axis=1) - \
        np.nanmin(np.where(np.isfinite(act), act, np.inf), axis=1)
    panels.append(("hist", "activation spread per sample (ms)", spread[np.isfinite(spread)]))
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (kind, title, data) in zip(axes.ravel(), panels, strict=False):
        if kind == "bar":
            labels = sorted(data)
            ax.bar(range(len(labels)), [data[k] for k in labels], color="tab:blue")
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
        else:
            ax.hist(data, bins=min(30, max(5, int(np.sqrt(max(len(data), 1))))),
                    color="tab:orange")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{Path(path).name}: {n} samples", fontsize=10)
    fig.tight_layout()
    with atomic_path(figure) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    log.info("wrote %s", figure)
    return Path(figure)


def write_summary(path: str | Path, summary_json: str | Path | None = None,
                  figure: str | Path | None = None) -> dict[str, Any]:
    """Compute :func:`summarise`, log it, and write it as JSON and/or a figure."""
    summary = summarise(path)
    log.info("summary: %d samples, counts %s, splits %s", summary["n"], summary["counts"],
             summary["splits"])
    for pattern, c in summary["criteria"].items():
        but = "".join(f"; {v} all but {k}" for k, v in c["all_met_but"].items()
                      if v > c["all_met"])
        log.info("textbook criteria, %s: %d of %d beats meet all%s (%s)", pattern,
                 c["all_met"], c["n"], but, ", ".join(f"{k} {v}" for k, v in c["met"].items()))
    if summary_json:
        write_json(summary_json, summary)
    if figure:
        plot_summary(path, figure)
    return summary
