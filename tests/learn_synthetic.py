"""A tiny dataset in the exact DESIGN.md section 6 layout, from a known generative relation.

Test data for the learning code (the real data comes from the simulator). Every sample has an
onset t0 and a speed s; point p activates at ``a_p = t0 + s d_p`` (d_p fixed per point), so
the activation times are a linear function of two latent numbers. Lead l carries a QRS-like
Gaussian at ``t0 + s c_l`` (width 3 s) and a T-wave 45 ms later; a network that reads the
timing of the leads can therefore recover t0, s and every a_p. Vm at point p is an upstroke
``-85 + 125 sigmoid((t - a_p) / 0.7)`` with a repolarisation 40 ms later, so its exact 0-mV
crossing is ``a_p + 0.7 ln(85 / 40)`` and its APD90 is known in closed form.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
ELECTRODES = ["RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6"]
UPSTROKE_MS = 0.7
APD_SHIFT_MS = 40.0
REPOL_MS = 3.0


def point_names() -> list[str]:
    """The 75 point names of DESIGN.md section 4, in order."""
    epi = [f"AHA{i:02d}" for i in (1, 4, 5, 6, 7, 10, 11, 12, 13, 15, 16, 17)] + \
          [f"RV{i:02d}" for i in (1, 2, 3, 6, 7, 8, 11, 12)]
    return ([f"AHA{i:02d}" for i in range(1, 18)] + [f"RV{i:02d}" for i in range(1, 14)]
            + [f"EPI_{n}" for n in epi] + [f"MID_{n}" for n in epi]
            + ["SEPTM_AHA02_RV05", "SEPTM_AHA03_RV04", "SEPTM_AHA08_RV10",
               "SEPTM_AHA09_RV09", "SEPTM_AHA14_RV13"])


def vm_model(t: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Vm (mV) for activation times ``act`` (...,) at times ``t`` (T,): shape (..., T)."""
    up = 1.0 / (1.0 + np.exp(-(t - act[..., None]) / UPSTROKE_MS))
    down = 1.0 / (1.0 + np.exp(-(t - act[..., None] - APD_SHIFT_MS) / REPOL_MS))
    return -85.0 + 125.0 * up * (1.0 - down)


def exact_crossing(act: np.ndarray) -> np.ndarray:
    """The exact upward 0-mV crossing of :func:`vm_model` (upstroke only; the repolarisation
    factor is below 1e-5 there)."""
    return act + UPSTROKE_MS * np.log(85.0 / 40.0)


def write_tiny_dataset(path: str | Path, n: int = 160, t_len: int = 128, seed: int = 0,
                       noise_mV: float = 0.0, t0_range: tuple[float, float] = (5.0, 30.0),
                       n_hearts: int = 1, heart_sd_ms: float = 3.0,
                       split: str = "sample") -> dict[str, np.ndarray]:
    """Write the dataset; return the latent truth (``act_true``, ``t0``, ``speed``).

    With ``n_hearts > 1`` every sample belongs to one of ``n_hearts`` hearts
    (``params/anatomy`` = ``heart00``...): a heart shifts the point delays d_p and the lead
    delays c_l by its own N(0, ``heart_sd_ms``) offsets (drawn from a separate generator,
    so ``n_hearts = 1`` gives the original dataset). ``split = "heart_and_sample"`` holds
    out whole test hearts besides random samples (``pipeline.campaign.splits``).
    """
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.0, 25.0, 75)
    c = rng.uniform(0.0, 25.0, 12)
    amp = rng.choice([-1.0, 1.0], 12) * rng.uniform(0.5, 2.0, 12)
    t0 = rng.uniform(*t0_range, n)
    speed = rng.uniform(0.6, 1.4, n)
    heart = np.zeros(n, dtype=int)
    dd, dc = np.zeros((1, 75)), np.zeros((1, 12))
    if n_hearts > 1:
        hrng = np.random.default_rng([seed, 99])
        heart = hrng.integers(0, n_hearts, n)
        dd = hrng.normal(0.0, heart_sd_ms, (n_hearts, 75))
        dc = hrng.normal(0.0, heart_sd_ms, (n_hearts, 12))
    act = t0[:, None] + speed[:, None] * (d[None, :] + dd[heart])
    t = np.arange(t_len, dtype=np.float64)
    centre = t0[:, None] + speed[:, None] * (c[None, :] + dc[heart])      # (n, 12)
    width = 3.0 * speed[:, None, None]
    ecg = amp[None, :, None] * (np.exp(-0.5 * ((t - centre[..., None]) / width) ** 2)
                                - 0.3 * np.exp(-0.5 * ((t - centre[..., None] - 45.0) / 8.0) ** 2))
    ecg += noise_mV * rng.standard_normal(ecg.shape)
    vm = vm_model(t, act)
    never = np.zeros((n, 75), bool)
    never[0, 74] = True                                   # one point that never activates
    vm[never] = -85.0
    crossing = np.where(never, np.nan, exact_crossing(act))
    idx = rng.permutation(n)
    n_val = n_test = max(1, int(round(0.15 * n)))
    with h5py.File(path, "w") as f:
        f["ecg"] = ecg.astype(np.float32)
        f["electrodes"] = rng.standard_normal((n, 10, t_len)).astype(np.float32)
        f["vm"] = vm.astype(np.float32)
        f["activation_ms"] = crossing.astype(np.float32)
        f["apd90_ms"] = np.full((n, 75), APD_SHIFT_MS, np.float32)
        names = (["param000"] * n if n_hearts == 1 else [f"heart{h:02d}" for h in heart])
        f["params/anatomy"] = np.array(names, dtype="S")
        f["params/pattern"] = np.array(["normal"] * n, dtype="S")
        f["params/sigma_l"] = rng.uniform(0.1, 0.2, n)
        f["params/sigma_t"] = rng.uniform(0.02, 0.06, n)
        f["params/sigma_fast_endo"] = rng.uniform(0.5, 1.0, n)
        f["params/gkr_scale"] = np.ones(n)
        f["params/bcl_ms"] = np.full(n, 1000.0)
        f["params/seed"] = np.arange(n, dtype=np.int64)
        splits = {"val": np.sort(idx[:n_val]), "test": np.sort(idx[n_val:n_val + n_test]),
                  "train": np.sort(idx[n_val + n_test:])}
        if split == "heart_and_sample":
            from pipeline.campaign.splits import split_by_heart_and_sample
            splits = split_by_heart_and_sample(names, np.arange(n), 0.15, 0.15, seed, "tiny")
        for key, value in splits.items():
            f[f"split/{key}"] = np.asarray(value, dtype=np.int64)
        f.attrs["lead_names"] = LEADS
        f.attrs["electrode_names"] = ELECTRODES
        f.attrs["point_names"] = point_names()
        f.attrs["dt_ms"] = 1.0
        f.attrs["units"] = "ecg mV, vm mV, times ms"
    return {"act_true": act, "t0": t0, "speed": speed, "crossing": crossing}
