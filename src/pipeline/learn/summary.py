"""One table and one figure comparing every evaluated network with the baselines.

Reads ``eval/{network}/metrics.json`` files; writes ``summary.csv`` (one row per network
and split: network, split, n_parameters, activation MAE and SD of the network, the mean and
ridge baselines, and for Vm networks Pearson r and APD90 error) and ``summary.png`` (a bar
chart of validation and test activation MAE).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.io import atomic_path

log = logging.getLogger(__name__)

COLUMNS = ("network", "split", "n_parameters", "activation_mae_ms", "activation_sd_ms",
           "mean_mae_ms", "ridge_mae_ms", "vm_pearson_r", "apd90_mae_ms",
           "sustained_activation_mae_ms")


def summarise(metrics_files: list[str | Path], out_dir: str | Path) -> list[dict[str, Any]]:
    """Write ``summary.csv`` and ``summary.png`` into ``out_dir``; return the rows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows: list[dict[str, Any]] = []
    for path in metrics_files:
        try:
            m = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read metrics file {path}: {exc}") from exc
        for split in ("val", "test"):
            s = m["splits"][split]
            rows.append({"network": m["network"], "split": split,
                         "n_parameters": m["n_parameters"],
                         "activation_mae_ms": s["activation_mae_ms"],
                         "activation_sd_ms": s["activation_sd_ms"],
                         "mean_mae_ms": m["baselines"]["mean"][split]["activation_mae_ms"],
                         "ridge_mae_ms": m["baselines"]["ridge"][split]["activation_mae_ms"],
                         "vm_pearson_r": s.get("vm_pearson_r"),
                         "apd90_mae_ms": s.get("apd90_mae_ms"),
                         "sustained_activation_mae_ms": s.get("sustained_activation_mae_ms")})
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "summary.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, split in zip(axes, ("val", "test"), strict=True):
        sub = [r for r in rows if r["split"] == split]
        x = np.arange(len(sub))
        for k, (key, label) in enumerate((("activation_mae_ms", "network"),
                                          ("ridge_mae_ms", "ridge"), ("mean_mae_ms", "mean"))):
            vals = [np.nan if r[key] is None else r[key] for r in sub]
            ax.bar(x + (k - 1) * 0.27, vals, width=0.27, label=label)
        ax.set_xticks(x, [r["network"] for r in sub])
        ax.set_title(f"{split} split")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("activation MAE (ms)")
    axes[0].legend()
    fig.tight_layout()
    with atomic_path(out_dir / "summary.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    log.info("summary of %d networks -> %s", len(metrics_files), out_dir)
    return rows
