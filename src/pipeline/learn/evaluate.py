"""Evaluation of a trained network (DESIGN.md section 7): metrics, baselines and figures.

Writes into ``out_dir``:

- ``metrics.json``: ``network``, ``n_parameters``, ``dataset``, ``splits.{val,test}`` and
  ``baselines.{mean,ridge}.{val,test}`` with the keys of :mod:`pipeline.learn.metrics`,
  against the paper's label (first 1-ms sample with Vm > 0);
- ``metrics_interpolated.json``: the same layout against the interpolated 0-mV crossing
  ``activation_ms`` of the dataset;
- ``ecg.png``, ``activation_maps.png`` (LV/RV bull's-eyes true vs predicted for the first
  test sample), ``activation_3d.png`` (when an anatomy file is given), ``error_boxplot.png``,
  ``vm_traces.png`` (points 1, 17, 67).

Baselines: ``mean`` predicts the training-set mean target (per point, or per point and time
for Vm); ``ridge`` is a ridge regression on the scaled ECG averaged over 5-ms bins, alpha
chosen on the validation split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.device import pick_device
from pipeline.io import write_json
from pipeline.learn import figures
from pipeline.learn.checkpoint import load_model
from pipeline.learn.data import (
    Normalisation,
    crossing_activation,
    paper_activation,
    read_dataset,
    scale_ecg,
    sustained_activation,
    targets,
)
from pipeline.learn.metrics import (
    Ridge,
    activation_metrics,
    calibration,
    heart_breakdown,
    ridge_features,
    vm_metrics,
)
from pipeline.learn.models import member_units
from pipeline.learn.spread import sd_scale

log = logging.getLogger(__name__)

EVAL_SPLITS: tuple[str, ...] = ("val", "test")


def outputs_to_predictions(units: np.ndarray, task: str, norm: Normalisation,
                           dt_ms: float = 1.0) -> dict[str, np.ndarray]:
    """Network outputs -> ``act_paper_ms``, ``act_interp_ms`` (N, 75) and ``vm_mV``.

    For an activation network both activation entries are the predicted times; for a Vm
    network they are the first sample above 0 mV and the interpolated 0-mV crossing of the
    predicted Vm (N, 75, T).
    """
    if task == "activation":
        act = (units * norm.label_scale_ms).astype(np.float32)
        return {"act_paper_ms": act, "act_interp_ms": act}
    vm = norm.vm_from_unit(units)
    return {"act_paper_ms": paper_activation(vm, dt_ms),
            "act_interp_ms": crossing_activation(vm, dt_ms), "vm_mV": vm}


def _split_metrics(pred: dict[str, np.ndarray], truth: dict[str, np.ndarray], key: str,
                   record_ms: float, dt_ms: float) -> dict[str, Any]:
    """Activation metrics against ``key``; for Vm outputs also the Vm metrics and
    ``sustained_activation_mae_ms``: the MAE with the activation read, on true and
    predicted Vm alike, as the first 0-mV crossing held above -40 mV for 50 ms (first
    sample or interpolated, as ``key``), so that a brief predicted bump does not count."""
    out = activation_metrics(pred[key], truth[key], record_ms)
    if "vm_mV" in pred:
        out.update(vm_metrics(pred["vm_mV"], truth["vm_mV"], dt_ms))
        interp = key == "act_interp_ms"
        out["sustained_activation_mae_ms"] = activation_metrics(
            sustained_activation(pred["vm_mV"], dt_ms, interp),
            sustained_activation(truth["vm_mV"], dt_ms, interp), record_ms
        )["activation_mae_ms"]
    return out


def evaluate(model_path: str | Path, dataset: str | Path, out_dir: str | Path, *,
             anatomy: str | Path | list[str | Path] | None = None, device: str = "auto",
             sample: int = 0) -> dict[str, Any]:
    """Evaluate checkpoint ``model_path`` on ``dataset``; write metrics and figures.

    Besides the DESIGN section 7 keys, ``metrics.json`` holds for an ensemble
    ``uncertainty.{val,test}`` (:func:`pipeline.learn.metrics.calibration` of the members'
    SD times the checkpoint's validation-fitted scale, :mod:`pipeline.learn.spread`, against
    the errors), ``uncertainty_raw`` (the same for the unscaled SD), ``sd_scale`` and,
    when the test split has samples of hearts seen in training and of unseen hearts (``params/anatomy``), ``test_seen_heart_mae_ms``,
    ``test_unseen_heart_mae_ms`` and ``hearts`` (:func:`pipeline.learn.metrics.heart_breakdown`).

    Parameters
    ----------
    anatomy
        anatomy.h5 file(s) for the 3-D figure; the one of the drawn sample's heart
        (``params/anatomy``, matched to the file's folder name or ``heart_name``) is used.
    sample
        Position within the test split (val if test is empty) of the sample drawn in the
        per-sample figures.

    Returns
    -------
    dict
        The content of ``metrics.json``.
    """
    dev = pick_device(device)
    model, cfg, norm, ckpt = load_model(model_path, dev)
    data = read_dataset(dataset)
    if data.n_samples != cfg.n_samples:
        from pipeline.errors import InputError
        raise InputError(f"dataset {dataset} has T = {data.n_samples} samples, the model "
                         f"{model_path} was trained on T = {cfg.n_samples}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dt, record_ms = data.dt_ms, data.n_samples * data.dt_ms
    x = scale_ecg(data.ecg)
    y = targets(data, cfg.task, norm)

    def truth(idx: np.ndarray) -> dict[str, np.ndarray]:
        t = {"act_paper_ms": paper_activation(data.vm[idx], dt),
             "act_interp_ms": data.activation_ms[idx]}
        if cfg.task == "vm":
            t["vm_mV"] = data.vm[idx]
        return t

    preds, spread = _network_predictions(model, cfg, norm, data, x, y.shape[1:], dev)
    base_preds = _baseline_predictions(data, x, y, cfg.task, norm)
    results = {}
    for key, fname in (("act_paper_ms", "metrics.json"),
                       ("act_interp_ms", "metrics_interpolated.json")):
        metrics: dict[str, Any] = {
            "network": cfg.name, "n_parameters": int(ckpt.get("n_parameters", 0)),
            "dataset": str(dataset),
            "splits": {s: _split_metrics(preds[s], truth(data.splits[s]), key, record_ms, dt)
                       for s in EVAL_SPLITS},
            "baselines": {b: {s: _split_metrics(base_preds[b][s], truth(data.splits[s]), key,
                                                record_ms, dt) for s in EVAL_SPLITS}
                          for b in ("mean", "ridge")},
        }
        metrics.update(_extras(data, preds, spread, truth, key, record_ms, sd_scale(ckpt)))
        write_json(out_dir / fname, metrics)
        results[fname] = metrics
    m = results["metrics.json"]
    for s in EVAL_SPLITS:
        log.info("%s %s: activation MAE %s ms (mean baseline %s, ridge %s)", cfg.name, s,
                 m["splits"][s]["activation_mae_ms"],
                 m["baselines"]["mean"][s]["activation_mae_ms"],
                 m["baselines"]["ridge"][s]["activation_mae_ms"])
    _figures(data, cfg.task, preds, truth, out_dir, anatomy, sample, cfg.name)
    return m


def _network_predictions(model: torch.nn.Module, cfg: Any, norm: Normalisation, data: Any,
                         x: np.ndarray, y_shape: tuple[int, ...], dev: torch.device
                         ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Predictions per split (members' mean) and, for ensembles, the members' SD (ms)."""
    preds: dict[str, dict[str, np.ndarray]] = {}
    spread: dict[str, np.ndarray] = {}
    for s in EVAL_SPLITS:
        idx = data.splits[s]
        members = member_units(model, x[idx], dev).reshape((-1, len(idx)) + y_shape)
        preds[s] = outputs_to_predictions(members.mean(axis=0), cfg.task, norm, data.dt_ms)
        if members.shape[0] > 1 and cfg.task == "activation":
            spread[s] = members.std(axis=0) * norm.label_scale_ms
    return preds, spread


def _baseline_predictions(data: Any, x: np.ndarray, y: np.ndarray, task: str,
                          norm: Normalisation) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Mean and ridge baselines, fitted on the training split in network units."""
    dt = data.dt_ms
    tr, va = data.splits["train"], data.splits["val"]
    y_flat = y.reshape(len(y), -1)
    with np.errstate(invalid="ignore"):
        mean_units = np.nanmean(y_flat[tr], axis=0)
    feats = ridge_features(x)
    ridge = Ridge().fit(feats[tr], y_flat[tr], feats[va], y_flat[va])
    base: dict[str, dict[str, dict[str, np.ndarray]]] = {"mean": {}, "ridge": {}}
    for s in EVAL_SPLITS:
        idx = data.splits[s]
        shape = (len(idx),) + y.shape[1:]
        base["mean"][s] = outputs_to_predictions(
            np.broadcast_to(mean_units, (len(idx), mean_units.size)).reshape(shape), task,
            norm, dt)
        base["ridge"][s] = outputs_to_predictions(
            ridge.predict(feats[idx]).astype(np.float32).reshape(shape), task, norm, dt)
    return base


def _extras(data: Any, preds: dict[str, dict[str, np.ndarray]], spread: dict[str, np.ndarray],
            truth: Any, key: str, record_ms: float, scale: float = 1.0) -> dict[str, Any]:
    """Ensemble calibration (SD times ``scale``, and raw) and the seen/unseen-heart
    breakdown of the test split."""
    out: dict[str, Any] = {}
    if spread:
        out["sd_scale"] = scale
        for name, k in (("uncertainty", scale), ("uncertainty_raw", 1.0)):
            out[name] = {s: calibration(preds[s][key], spread[s] * k,
                                        truth(data.splits[s])[key]) for s in spread}
    test = data.splits["test"]
    if data.anatomy and test.size:
        hearts = [data.anatomy[i] for i in test]
        train_hearts = {data.anatomy[i] for i in data.splits["train"]}
        hb = heart_breakdown(preds["test"][key], truth(test)[key], hearts, train_hearts,
                             record_ms)
        if hb["n_seen"] and hb["n_unseen"]:
            out["test_seen_heart_mae_ms"] = hb["seen_mae_ms"]
            out["test_unseen_heart_mae_ms"] = hb["unseen_mae_ms"]
            out["hearts"] = hb
    return out


def _figures(data: Any, task: str, preds: dict[str, dict[str, np.ndarray]], truth: Any,
             out_dir: Path, anatomy: str | Path | None, sample: int, name: str) -> None:
    split = "test" if data.splits["test"].size else "val"
    idx = data.splits[split]
    k = min(sample, len(idx) - 1)
    i = int(idx[k])
    t = truth(idx)
    p = preds[split]
    figures.plot_ecg(data.ecg[i], out_dir / "ecg.png", title=f"ECG of sample {i} ({split})")
    maps = {"true": t["act_paper_ms"][k], f"Network {name}": p["act_paper_ms"][k]}
    figures.plot_bullseyes(maps, out_dir / "activation_maps.png")
    err = np.abs(np.where(np.isnan(p["act_paper_ms"]), data.n_samples * data.dt_ms,
                          p["act_paper_ms"]) - t["act_paper_ms"])
    figures.plot_error_boxes(err, data.point_names, out_dir / "error_boxplot.png",
                             title=f"Network {name}, {split} split")
    figures.plot_vm_traces(data.vm[i], out_dir / "vm_traces.png", data.point_names,
                           vm_pred=p["vm_mV"][k] if task == "vm" else None,
                           act_pred=p["act_paper_ms"][k] if task == "activation" else None,
                           dt_ms=data.dt_ms)
    if anatomy is None:
        return
    heart = data.anatomy[i] if data.anatomy else None
    path = anatomy_for(anatomy, heart)
    if path is not None:
        figures.plot_anatomy_3d(path, maps, out_dir / "activation_3d.png")
    else:
        figures.plot_message(f"no anatomy file for heart {heart!r}",
                             out_dir / "activation_3d.png")


def anatomy_for(anatomy: Any, heart: str | None) -> Path | None:
    """The anatomy file of ``heart`` among ``anatomy`` (one file or path, or a list of
    them; a single file is taken as it is when ``heart`` is None; with several and no
    heart, the first)."""
    files = [Path(a) for a in ([anatomy] if isinstance(anatomy, (str, Path)) else anatomy)]
    if len(files) == 1 and heart is None:
        return files[0]
    import h5py

    for f in files:
        with h5py.File(f, "r") as h:
            name = h.attrs.get("heart_name", f.parent.name)
        name = name.decode() if isinstance(name, bytes) else str(name)
        if heart is None or name == heart or f.parent.name == heart:
            return f
    log.warning("no anatomy file for heart %r among %s: 3-D figure skipped", heart,
                [str(f) for f in files])
    return None
