"""Synthetic traces with analytic labels, for the campaign and dataset tests.

An action potential sampled every 1 ms: rest -85 mV until ``ta`` (an integer), a linear
upstroke to +20 mV over 2 ms, a plateau until ``ta + 202``, a linear repolarisation to
-85 mV over 100 ms. Sampled at integer times, linear interpolation is exact on every
piece, so: activation (0 mV upward) = ``ta + 1 + 32.5 / 52.5``; the paper's label (first
sample above 0) = ``ta + 2``; APD90 (level 20 - 0.9 * 105 = -74.5 mV, reached 90 ms into
the repolarisation) = ``ta + 292 - activation``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.signals.leads import leads_from_electrodes
from pipeline.simulate.shard import ShardData, write_shard

REST, PEAK = -85.0, 20.0


def action_potential(ta: np.ndarray, n_samples: int = 500) -> np.ndarray:
    """Traces ``(*ta.shape, n_samples)`` mV of the module's piecewise-linear AP."""
    t = np.arange(n_samples, dtype=np.float64)
    s = t - np.asarray(ta, dtype=np.float64)[..., None]
    v = np.full(s.shape, REST)
    up = (s >= 0) & (s < 2)
    v[up] = REST + (PEAK - REST) * s[up] / 2
    plateau = (s >= 2) & (s < 202)
    v[plateau] = PEAK
    down = (s >= 202) & (s < 302)
    v[down] = PEAK - (PEAK - REST) * (s[down] - 202) / 100
    return v


def expected_labels(ta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activation_ms, activation_label_ms, apd90_ms) of :func:`action_potential`."""
    act = ta + 1 + 32.5 / 52.5
    return act, ta + 2.0, ta + 292.0 - act


def point_activation(sim_id: int, n_points: int = 75) -> np.ndarray:
    """Integer activation times (ms) of a synthetic simulation, depending on its sim_id."""
    return (10 + (np.arange(n_points) * 7 + 3 * sim_id) % 90).astype(np.float64)


def electrodes_for(sim_id: int, n_samples: int = 500) -> np.ndarray:
    """Electrode potentials ``(10, T)`` mV; electrode e is a sinusoid scaled by sim_id."""
    t = np.arange(n_samples)
    return np.stack([(1 + sim_id) * 0.01 * np.sin(2 * np.pi * t / 250 + e) for e in range(10)])


def make_shard(path: Path, table: pd.DataFrame, n_samples: int = 500,
               point_names: list[str] | None = None) -> Path:
    """Write a shard file for the rows of ``table`` with synthetic, analytic contents."""
    from pipeline.campaign.llnl import point_names as default_names

    ids = table["sim_id"].to_numpy()
    ta = np.stack([point_activation(int(i)) for i in ids])
    vm = action_potential(ta, n_samples)
    electrodes = np.stack([electrodes_for(int(i), n_samples) for i in ids])
    act, label, apd = expected_labels(ta)
    params = {c: table[c].to_numpy() for c in table.columns}
    data = ShardData(ecg=leads_from_electrodes(electrodes).astype(np.float32),
                     electrodes=electrodes.astype(np.float32), vm=vm.astype(np.float32),
                     activation_ms=act, activation_label_ms=label, apd90_ms=apd,
                     params=params, point_names=point_names or default_names(), dt_ms=1.0,
                     anatomy=str(table["anatomy"].iloc[0]))
    return write_shard(path, data)
