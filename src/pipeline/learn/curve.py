"""Learning curve: train on growing fractions of the training split, report val/test MAE.

Every size trains the same preset with the same settings and seed on the first
``round(f N_train)`` samples of one seeded permutation of the training split (nested
subsets, :func:`pipeline.learn.train.subset`); validation (model selection) and test are
the full splits. The ridge baseline is refitted on the same subset, so the curve shows
whether the network's advantage grows with data. Outputs: ``learning_curve.json`` and
``learning_curve.png`` in ``out_dir``, the checkpoints in ``out_dir/f{fraction}/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import atomic_path, write_json
from pipeline.learn.checkpoint import load_model
from pipeline.learn.data import LearnData, paper_activation, read_dataset, scale_ecg
from pipeline.learn.evaluate import outputs_to_predictions
from pipeline.learn.metrics import Ridge, activation_metrics, ridge_features
from pipeline.learn.models import member_units
from pipeline.learn.train import subset, train

log = logging.getLogger(__name__)


def split_mae(model_path: str | Path, data: LearnData, splits: tuple[str, ...] = ("val", "test")
              ) -> dict[str, float | None]:
    """Activation MAE (ms, paper label) of a checkpoint on the given splits of ``data``."""
    model, cfg, norm, _ = load_model(model_path)
    out: dict[str, float | None] = {}
    for s in splits:
        idx = data.splits[s]
        if idx.size == 0:
            out[s] = None
            continue
        units = member_units(model, scale_ecg(data.ecg[idx])).mean(axis=0)
        pred = outputs_to_predictions(units, cfg.task, norm, data.dt_ms)["act_paper_ms"]
        out[s] = activation_metrics(pred, paper_activation(data.vm[idx], data.dt_ms),
                                    data.n_samples * data.dt_ms)["activation_mae_ms"]
    return out


def ridge_mae(data: LearnData, train_idx: np.ndarray) -> dict[str, float | None]:
    """Activation MAE (ms) of the ridge baseline fitted on ``train_idx`` (alpha on val)."""
    label = paper_activation(data.vm, data.dt_ms)
    feats = ridge_features(scale_ecg(data.ecg))
    va = data.splits["val"]
    ridge = Ridge().fit(feats[train_idx], label[train_idx], feats[va], label[va])
    return {s: (activation_metrics(ridge.predict(feats[data.splits[s]]), label[data.splits[s]],
                                   data.n_samples * data.dt_ms)["activation_mae_ms"]
                if data.splits[s].size else None) for s in ("val", "test")}


def learning_curve(dataset: str | Path, network: str, sizes: list[float], out_dir: str | Path,
                   *, settings: dict[str, Any] | None = None, seed: int = 0,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``network`` on each fraction in ``sizes``; write JSON + PNG; return the JSON.

    Parameters
    ----------
    dataset
        Dataset file (DESIGN.md section 6).
    network
        Preset name.
    sizes
        Fractions (0, 1] of the training split.
    out_dir
        Output folder.
    settings, seed, overrides
        As :func:`pipeline.learn.train.train`.

    Returns
    -------
    dict
        ``network``, ``dataset``, ``rows``: per size ``fraction``, ``n_train``,
        ``val_mae_ms``, ``test_mae_ms``, ``ridge_val_mae_ms``, ``ridge_test_mae_ms``.
    """
    out_dir = Path(out_dir)
    data = read_dataset(dataset)
    rows = []
    for f in sorted(sizes):
        ckpt = train(dataset, network, out_dir / f"f{f:g}", settings=settings, seed=seed,
                     overrides=overrides, progress=False, train_fraction=f, fit_ood=False)
        idx = subset(data.splits["train"], f, seed)
        net, ridge = split_mae(ckpt, data), ridge_mae(data, idx)
        rows.append({"fraction": f, "n_train": len(idx), "val_mae_ms": net["val"],
                     "test_mae_ms": net["test"], "ridge_val_mae_ms": ridge["val"],
                     "ridge_test_mae_ms": ridge["test"]})
        log.info("learning curve %s: %d training samples -> val %.3f ms, test %s ms (ridge "
                 "%.3f / %s)", network, len(idx), net["val"], net["test"], ridge["val"],
                 ridge["test"])
    result = {"network": network, "dataset": str(dataset), "settings": settings or {},
              "seed": seed, "rows": rows}
    write_json(out_dir / "learning_curve.json", result)
    plot_curve(result, out_dir / "learning_curve.png")
    return result


def plot_curve(result: dict[str, Any], path: str | Path) -> Path:
    """MAE against the number of training samples (log x), network and ridge, val and test."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    n = [r["n_train"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for key, style, label in (("val_mae_ms", "o-C0", "network val"),
                              ("test_mae_ms", "s--C0", "network test"),
                              ("ridge_val_mae_ms", "o-C1", "ridge val"),
                              ("ridge_test_mae_ms", "s--C1", "ridge test")):
        y = [np.nan if r[key] is None else r[key] for r in rows]
        ax.plot(n, y, style[:-2], color=style[-2:], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training samples")
    ax.set_ylabel("activation MAE (ms)")
    ax.set_title(f"learning curve: {result['network']}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
