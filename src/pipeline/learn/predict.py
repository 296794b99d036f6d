"""``pipeline predict``: a patient's 12-lead ECG -> activation times at the 75 points.

Input, through :mod:`pipeline.clinical` (the one preprocessing of real ECGs, docs/clinical.md):

- a recording (WFDB ``.hea`` + ``.dat``/``.mat``, ``.csv`` with a lead-name header, ``.npy``
  with ``fs``): :func:`pipeline.clinical.read_ecg` (12 leads in mV, any lead order, limb
  leads derived when missing) then :func:`pipeline.clinical.preprocess` (band-pass,
  1 kHz, R peaks, median beat of ``T`` samples with the QRS onset at ``onset_ms``,
  isoelectric level removed); the network reads ``Beats.network_input()``, every lead
  divided by its range, exactly as training scales the dataset (``learn.data.scale_ecg``);
- a single beat in the dataset layout: a ``.npy`` of shape (12, T) or (T, 12) with exactly
  the model's T samples and no ``fs`` (or ``fs`` = 1000) is taken as it is, 1 kHz, time 0
  at the start (a dataset record; still checked by ``read_ecg``: leads, NaN, amplitude).

Time convention: a simulation's time 0 is its first stimulus, where its QRS starts; a
recording's median beat puts the QRS onset at ``onset_ms`` (default 0) into the window, and
the reported times are relative to the QRS onset (window time minus ``onset_ms``). For a
dataset-layout beat they are relative to the window start.

Outputs in ``out_dir``: ``activation.csv`` (point, activation_ms[, sd_ms]),
``activation.json`` (times, SD, the OOD score, threshold and flag, the nearest training
sample, preprocessing summary, warnings, timings), ``vm.csv`` (Vm networks: t_ms and the 75
traces in mV), ``bullseye.png`` (predicted activation, beside the nearest training sample's
true map when ``dataset`` is given, and the ensemble's SD map on its own scale),
``ecg_comparison.png`` (the median beat beside the nearest training ECG), ``beats.png`` (a
recording's beats and median, on request) and ``activation_3d.png`` (with an anatomy file).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.clinical import network_input, preprocess, read_ecg
from pipeline.io import atomic_path, write_json
from pipeline.learn import figures
from pipeline.learn.checkpoint import load_model
from pipeline.learn.evaluate import outputs_to_predictions
from pipeline.learn.models import embedding, members_output
from pipeline.learn.ood import from_checkpoint
from pipeline.learn.spread import sd_scale

log = logging.getLogger(__name__)

FS_HZ = 1000.0


@dataclass(frozen=True, eq=False)
class PatientBeat:
    """The beat a network reads, with where it came from.

    Attributes
    ----------
    beat_mV
        float32 (12, T) mV at 1 kHz (the median beat of a recording, or the given beat).
    x
        float32 (12, T): ``beat_mV`` scaled per lead to range 1 (the network input).
    layout
        ``recording`` (read + preprocessed) or ``beat`` (dataset layout, taken as is).
    onset_ms
        Window time of the QRS onset (ms); 0 for a dataset-layout beat.
    summary
        JSON-ready preprocessing figures (rate, beats, QRS, derived leads ...).
    warnings
        Messages from reading and preprocessing.
    beats
        The :class:`pipeline.clinical.Beats` of a recording (None for a beat).
    """

    beat_mV: np.ndarray
    x: np.ndarray
    layout: str
    onset_ms: float
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    beats: Any = None


def _is_dataset_beat(path: Path, n_samples: int, fs: float | None) -> bool:
    """A ``.npy`` with exactly ``n_samples`` samples per lead and no rate other than 1 kHz."""
    if path.suffix.lower() != ".npy" or not path.exists() or fs not in (None, FS_HZ):
        return False
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False                            # read_ecg names the problem
    return arr.ndim == 2 and arr.shape in ((12, n_samples), (n_samples, 12))


def load_beat(path: str | Path, n_samples: int, *, fs: float | None = None,
              unit: str | None = None, onset_ms: float = 0.0,
              notch_hz: float | None = None) -> PatientBeat:
    """Read an ECG file and give the beat a network of ``n_samples`` samples reads.

    Parameters
    ----------
    path
        WFDB record, ``.csv`` or ``.npy`` (see the module docstring).
    n_samples
        T of the model (samples at 1 kHz).
    fs
        Sampling rate (Hz) of a ``.npy``/``.csv`` recording.
    unit
        ``mV`` (default), ``uV`` or ``V`` for ``.npy``/``.csv``.
    onset_ms
        Position of the QRS onset in the window (ms, 0..40 is inside the training's shift
        augmentation).
    notch_hz
        Mains notch (50/60 Hz) or None.

    Raises
    ------
    InputError
        Everything :func:`pipeline.clinical.read_ecg` and :func:`pipeline.clinical.preprocess`
        reject (named leads, samples, rates).
    """
    path = Path(path)
    if _is_dataset_beat(path, n_samples, fs):
        rec = read_ecg(path, unit=unit, fs=FS_HZ)
        beat = rec.signals.astype(np.float32)
        log.info("%s: one %d-sample beat at 1 kHz (dataset layout), taken as it is", path,
                 n_samples)
        return PatientBeat(beat, network_input(beat), "beat", 0.0,
                           {"source": str(path), "layout": "dataset beat (12, T) at 1 kHz"})
    rec = read_ecg(path, unit=unit, fs=fs)
    beats = preprocess(rec, n_samples=n_samples, onset_ms=onset_ms, notch_hz=notch_hz)
    summary = beats.summary()
    summary.update({"derived_leads": list(rec.derived), "input_fs_hz": rec.fs,
                    "duration_s": rec.duration_s})
    return PatientBeat(beats.median, beats.network_input(), "recording", beats.onset_ms,
                       summary, tuple(beats.warnings), beats)


class TrainingReference:
    """The training split's ECGs, to find the training sample nearest to a patient's beat.

    Nearest in the network's input space: Euclidean distance between scaled ECGs, reported
    as an RMS over the 12 x T values (scaled units; each lead has range 1).

    Parameters
    ----------
    dataset
        Dataset file (DESIGN.md section 6); only ``ecg``, ``activation_ms``,
        ``params/anatomy`` and ``split/{train,val}`` are read.
    """

    def __init__(self, dataset: str | Path) -> None:
        import h5py

        from pipeline.errors import InputError

        if not Path(dataset).exists():
            raise InputError(f"dataset file {dataset} does not exist")
        with h5py.File(dataset, "r") as f:
            ecg = np.asarray(f["ecg"][...], np.float32)
            self.index = np.asarray(f["split/train"][...], np.int64)
            val = np.asarray(f["split/val"][...], np.int64)
            self.activation_ms = np.asarray(f["activation_ms"][...], np.float32)[self.index]
            anat = f["params/anatomy"][...] if "params/anatomy" in f else None
        self.path = str(dataset)
        self.ecg = ecg[self.index]
        self.x = network_input(self.ecg).reshape(len(self.index), -1)
        self.anatomy = None if anat is None else [
            a.decode() if isinstance(a, bytes) else str(a) for a in anat[self.index]]
        xv = network_input(ecg[val]).reshape(len(val), -1)
        self.val_median_rms = float(np.median([self._dist(v)[1] for v in xv])) if len(val) \
            else float("nan")

    def _dist(self, x: np.ndarray) -> tuple[int, float]:
        d2 = ((self.x - x.reshape(1, -1)) ** 2).mean(axis=1)
        k = int(np.argmin(d2))
        return k, float(np.sqrt(d2[k]))

    def nearest(self, x: np.ndarray) -> dict[str, Any]:
        """Nearest training sample of a scaled beat ``x`` (12, T).

        Returns
        -------
        dict
            ``position`` (in the training split), ``index`` (dataset row), ``rms_distance``,
            ``val_median_rms`` (the same distance of validation samples, for scale),
            ``heart``, ``dataset``.
        """
        if x.shape[-1] * 12 != self.x.shape[1]:
            from pipeline.errors import InputError
            raise InputError(f"dataset {self.path} has T = {self.x.shape[1] // 12}, the model "
                             f"reads T = {x.shape[-1]}")
        k, rms = self._dist(x)
        return {"position": k, "index": int(self.index[k]), "rms_distance": rms,
                "val_median_rms": self.val_median_rms,
                "heart": self.anatomy[k] if self.anatomy else None, "dataset": self.path}


class Predictor:
    """A loaded model (and optional training reference) that predicts on ECG files.

    Parameters
    ----------
    model_path
        Checkpoint ``{network}.pt``; its ``ood`` entry (when fitted) gives the OOD score.
    dataset
        Training dataset for the nearest-sample comparison (optional).
    """

    def __init__(self, model_path: str | Path, dataset: str | Path | None = None) -> None:
        self.model_path = str(model_path)
        self.model, self.cfg, self.norm, self.ckpt = load_model(model_path)
        self.ood = from_checkpoint(self.ckpt)
        self.sd_scale = sd_scale(self.ckpt)
        self.point_names = _point_names(self.ckpt)
        self.reference = TrainingReference(dataset) if dataset else None
        if self.ood is None:
            log.warning("%s has no OOD score (train again, or run `pipeline fit-ood`)",
                        model_path)

    @torch.no_grad()
    def infer(self, x: np.ndarray) -> dict[str, Any]:
        """Network outputs for one scaled beat ``x`` (12, T).

        Returns
        -------
        dict
            ``activation_ms`` (75,) window time; ``sd_ms`` (75,) members' SD times the
            checkpoint's validation-fitted scale (:mod:`pipeline.learn.spread`) or None;
            ``vm_mV`` (75, T) for Vm networks; ``ood`` (score, threshold, flag) or None.
        """
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)[None])
        members = members_output(self.model, xt).numpy()                 # (K, 1, ...)
        mean = outputs_to_predictions(members.mean(axis=0), self.cfg.task, self.norm)
        out: dict[str, Any] = {"activation_ms": mean["act_paper_ms"][0], "sd_ms": None}
        if members.shape[0] > 1:
            each = [outputs_to_predictions(m, self.cfg.task, self.norm)["act_paper_ms"][0]
                    for m in members]
            out["sd_ms"] = np.std(each, axis=0) * self.sd_scale
        if "vm_mV" in mean:
            out["vm_mV"] = mean["vm_mV"][0]
        out["ood"] = None
        if self.ood is not None:
            score = float(self.ood.score(embedding(self.model, xt).numpy())[0])
            out["ood"] = {"score": score, "threshold": self.ood.threshold,
                          "ood": bool(score > self.ood.threshold),
                          "quantile": self.ood.quantile, "space": "penultimate embedding",
                          "reference": self.ood.reference}
        return out

    def predict(self, ecg_path: str | Path, *, fs: float | None = None,
                unit: str | None = None, onset_ms: float = 0.0,
                notch_hz: float | None = None) -> dict[str, Any]:
        """Read, preprocess and predict one ECG file (no files written).

        Returns
        -------
        dict
            JSON-ready result (see :func:`predict_file`) plus the arrays ``_beat``
            (:class:`PatientBeat`) and ``_vm_mV`` for the writers.
        """
        t0 = time.perf_counter()
        beat = load_beat(ecg_path, self.cfg.n_samples, fs=fs, unit=unit, onset_ms=onset_ms,
                         notch_hz=notch_hz)
        t1 = time.perf_counter()
        out = self.infer(beat.x)
        t2 = time.perf_counter()
        origin = beat.onset_ms
        res: dict[str, Any] = {
            "model": self.model_path, "network": self.cfg.name, "ecg": str(ecg_path),
            "layout": beat.layout,
            "time_origin": "QRS onset" if beat.layout == "recording" else "window start",
            "onset_ms": origin, "point_names": self.point_names,
            "activation_ms": [_num(v - origin) for v in out["activation_ms"]]}
        if out["sd_ms"] is not None:
            res["sd_ms"] = [_num(v) for v in out["sd_ms"]]
            res["sd_scale"] = self.sd_scale
        res["ood"] = out["ood"]
        res["nearest"] = self.reference.nearest(beat.x) if self.reference else None
        res["preprocessing"] = beat.summary
        res["warnings"] = list(beat.warnings) + _ood_warning(out["ood"], ecg_path)
        res["timing_s"] = {"read_preprocess": t1 - t0, "network_ood": t2 - t1,
                           "nearest": time.perf_counter() - t2}
        res["_beat"], res["_vm_mV"] = beat, out.get("vm_mV")
        return res


def _ood_warning(ood: dict[str, Any] | None, path: str | Path) -> list[str]:
    if ood and ood["ood"]:
        msg = (f"{path}: out of distribution: score {ood['score']:.1f} above the threshold "
               f"{ood['threshold']:.1f} (validation q{ood['quantile']:.2f}); the prediction "
               "extrapolates beyond the training data")
        log.warning("%s", msg)
        return [msg]
    return []


def write_outputs(res: dict[str, Any], out_dir: str | Path, predictor: Predictor,
                  anatomy: str | Path | list[str | Path] | None = None, beats_figure: bool = False
                  ) -> dict[str, Any]:
    """Write the CSV/JSON files and figures of a :meth:`Predictor.predict` result.

    ``beats_figure`` adds ``beats.png`` (every beat and the median, about 1 s more).

    Returns
    -------
    dict
        The JSON written to ``activation.json`` (``res`` without its arrays, plus ``files``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    beat, vm = res["_beat"], res["_vm_mV"]
    names = res["point_names"]
    act = np.array([np.nan if v is None else v for v in res["activation_ms"]])
    sd = None if "sd_ms" not in res else np.array([np.nan if v is None else v
                                                    for v in res["sd_ms"]])
    with atomic_path(out_dir / "activation.csv") as tmp, open(tmp, "w") as fh:
        fh.write("point,activation_ms" + (",sd_ms" if sd is not None else "") + "\n")
        fh.writelines(f"{n},{act[i]:.3f}" + (f",{sd[i]:.3f}" if sd is not None else "") + "\n" for i, n in enumerate(names))
    files = ["activation.csv", "activation.json"]
    if vm is not None:
        t_ms = np.arange(vm.shape[-1]) - res["onset_ms"]
        table = np.column_stack([t_ms, vm.T])
        with atomic_path(out_dir / "vm.csv") as tmp:
            np.savetxt(tmp, table, delimiter=",", fmt="%.4g", comments="",
                       header=",".join(["t_ms"] + list(names)))
        files.append("vm.csv")
    files += _figures(res, beat, act, sd, out_dir, predictor, anatomy, beats_figure)
    out = {k: v for k, v in res.items() if not k.startswith("_")}
    out["files"] = files
    out["timing_s"] = {**res["timing_s"], "outputs": time.perf_counter() - t0}
    write_json(out_dir / "activation.json", out)
    return out


def _heart_file(anatomy: str | Path | list[str | Path] | None,
                near: dict[str, Any] | None) -> Path | None:
    """The anatomy drawn in the 3-D figure: with several files, the nearest training
    sample's heart (else the first); None without anatomy."""
    if anatomy is None or (isinstance(anatomy, list) and not anatomy):
        return None
    from pipeline.learn.evaluate import anatomy_for

    heart = (near or {}).get("heart")
    files = anatomy if isinstance(anatomy, list) else [anatomy]
    found = anatomy_for(files, heart) if heart is not None else None
    return found if found is not None else Path(files[0])


def _figures(res: dict[str, Any], beat: PatientBeat, act: np.ndarray, sd: np.ndarray | None,
             out_dir: Path, predictor: Predictor, anatomy: str | Path | list[str | Path] | None,
             beats_figure: bool) -> list[str]:
    maps = {f"Network {res['network']}": act}
    near = res.get("nearest")
    ref = predictor.reference
    if near is not None and ref is not None:
        maps[f"nearest training sample {near['index']} (true)"] = ref.activation_ms[
            near["position"]]
        figures.plot_ecg_pair(beat.beat_mV, ref.ecg[near["position"]],
                              out_dir / "ecg_comparison.png",
                              ("patient median beat" if beat.layout == "recording"
                               else "input beat",
                               (f"nearest training sample {near['index']} "
                                f"(RMS {near['rms_distance']:.3f} scaled units)")),
                              onset_ms=beat.onset_ms)
    files = ["bullseye.png"]
    title = "activation time (ms" + (" after QRS onset)" if beat.layout == "recording" else ")")
    figures.plot_prediction_bullseyes(maps, out_dir / "bullseye.png", sd=sd, title=title)
    if near is not None:
        files.append("ecg_comparison.png")
    if beats_figure and beat.beats is not None:
        from pipeline.clinical.figure import plot_beats
        plot_beats(beat.beats, out_dir / "beats.png")
        files.append("beats.png")
    heart_file = _heart_file(anatomy, near)
    if heart_file is not None:
        figures.plot_anatomy_3d(heart_file, {"predicted": act}, out_dir / "activation_3d.png")
        files.append("activation_3d.png")
    return files


def predict_file(model_path: str | Path, ecg_path: str | Path, out_dir: str | Path, *,
                 fs: float | None = None, unit: str | None = None, onset_ms: float = 0.0,
                 notch_hz: float | None = None, dataset: str | Path | None = None,
                 anatomy: str | Path | list[str | Path] | None = None, beats_figure: bool = False
                 ) -> dict[str, Any]:
    """Predict activation times for one ECG file; write CSV, JSON and figures.

    Parameters
    ----------
    model_path
        Checkpoint ``{network}.pt``.
    ecg_path
        WFDB record, ``.csv`` or ``.npy`` (module docstring).
    out_dir
        Output folder.
    fs, unit, onset_ms, notch_hz
        See :func:`load_beat`.
    dataset
        Training dataset: adds the nearest training sample (figure and JSON).
    anatomy
        anatomy.h5 file(s) for the 3-D figure: with several, the nearest training
        sample's heart is drawn (``dataset`` given), else the first.
    beats_figure
        Also draw ``beats.png`` (the recording's beats and median beat).

    Returns
    -------
    dict
        The content of ``activation.json``: ``point_names``, ``activation_ms`` (75, ms after
        the QRS onset), ``sd_ms`` (75, ensembles), ``ood`` {``score``, ``threshold``, ``ood``},
        ``nearest``, ``preprocessing``, ``warnings``, ``timing_s``, ``files``.
    """
    predictor = Predictor(model_path, dataset)
    res = predictor.predict(ecg_path, fs=fs, unit=unit, onset_ms=onset_ms, notch_hz=notch_hz)
    out = write_outputs(res, out_dir, predictor, anatomy, beats_figure)
    act = np.array([np.nan if v is None else v for v in out["activation_ms"]])
    log.info("predicted activation for %s: %.1f..%.1f ms -> %s", ecg_path, np.nanmin(act),
             np.nanmax(act), out_dir)
    return out


def bench_predict(model_path: str | Path, paths: list[str | Path], out_dir: str | Path, *,
                  dataset: str | Path | None = None, repeat: int = 5) -> list[dict[str, Any]]:
    """Time prediction per recording after loading the model (one warm-up run each).

    Returns
    -------
    list of dict
        Per recording: ``path``, ``compute_s`` (read + preprocess + network + OOD +
        nearest sample, best of ``repeat``), ``outputs_s`` (CSV/JSON/figures, best of
        ``repeat``), ``total_s`` and the OOD score.
    """
    predictor = Predictor(model_path, dataset)
    rows = []
    for k, path in enumerate(paths):
        folder = Path(out_dir) / f"{k:02d}_{Path(path).stem}"
        res = write_outputs(predictor.predict(path), folder, predictor)      # warm-up
        comp, outs = [], []
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            r = predictor.predict(path)
            t1 = time.perf_counter()
            write_outputs(r, folder, predictor)
            comp.append(t1 - t0)
            outs.append(time.perf_counter() - t1)
        rows.append({"path": str(path), "compute_s": min(comp), "outputs_s": min(outs),
                     "total_s": min(c + o for c, o in zip(comp, outs)),
                     "ood_score": (res["ood"] or {}).get("score"),
                     "ood_threshold": (res["ood"] or {}).get("threshold")})
    return rows


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _point_names(ckpt: dict[str, Any]) -> list[str]:
    names = ckpt.get("point_names")
    return list(names) if names else [f"P{i:02d}" for i in range(75)]
