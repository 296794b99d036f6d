"""``pipeline bench gpu`` (``make gpu-check``): what a CUDA machine must show, in one JSON.

On a machine with a CUDA device, in a few minutes, in this order (the JSON is rewritten
after each section, so a run stopped early keeps what it measured):

1. **agreement**: one normal beat (2 mm parametric heart, 120 ms, monodomain and
   reaction-eikonal) through the simulate stage on the CPU and on CUDA; the largest
   activation-time difference at the 75 points (ms) and the ECG's relative difference
   (max |ECG_cuda - ECG_cpu| / max |ECG_cpu|);
2. **niederer**: P8 activation of the Niederer et al. 2011 slab at dx 0.2 and 0.1 mm on
   CUDA (the published range is 37.8-48.7 ms at the finest resolutions);
3. **kernels per step**: CUDA kernel launches per compiled step (torch profiler);
4. **chained**: the 2 mm heart (B = 8, reaction-eikonal), one compiled step per call
   against 8 chained in one call (``simulate.steps_per_call``): on a GPU a small problem
   is bound by the host's work per call, which chaining pays once per 8 steps;
5. **throughput**: compiled voxel-steps/s at 1 and 0.5 mm for batches 1, 8 and 64 (each in
   its own process, :func:`pipeline.monodomain.throughput.measure_all`), with peak memory,
   the diffusion tables in the solver's default layout (slot-major on CUDA);
6. **layout**: the same at 1 mm for batches 8 and 64 with the tables voxel-major, the
   comparison (session 27: slot-major ran batch 64 37 % faster, batch 8 the same);
7. **kernel times**: device time per compiled step at 1 mm, in all and per kernel, for
   batches 8 and 64 (torch profiler): which kernel makes batch 64 slower per voxel;
8. **memory**: bytes per voxel-simulation from the peak memory of two batch sizes, and
   the largest batch of the 1 mm heart that fits in the free device memory.

Without a CUDA device it stops at once with an error naming the missing device. On a
lent machine without a network, ``benchmarks/gpu_check.sh`` runs it from the source tree
with that machine's own PyTorch (docs/monodomain.md, "Throughput").
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError

log = logging.getLogger(__name__)

#: The sections :func:`gpu_check` runs, in order, that ``skip`` may name (``memory``, a
#: summary of ``throughput``, always runs).
SECTIONS = ("agreement", "niederer", "kernels_per_step", "chained", "throughput", "layout",
            "kernel_times")


def _agreement(folder: Path, model: str, device: str = "cuda") -> dict[str, Any]:
    """CPU against ``device`` (CUDA) for one short beat through the simulate stage."""
    import pandas as pd

    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import STUDY_ROW, _inputs
    from pipeline.simulate.run import prepare_shard, run_shard

    inputs = _inputs(folder, "param000", 2.0, 20221)
    pd.DataFrame([{"sim_id": 0, "anatomy": "param000", "pattern": "normal", **STUDY_ROW}]
                 ).to_csv(inputs / "gpu.csv", index=False)
    settings = replace(SimulateSettings.defaults(), model=model, dt_ms=0.1, duration_ms=120.0,
                       eikonal_resolution_mm=None)       # the eikonal on the 2 mm grid
    out = {}
    for name, dev in (("cpu", "cpu"), ("cuda", device)):
        run = RunSettings(device=dev, dtype="float32", compile=True, batch_size=1, threads=2)
        job = prepare_shard(inputs / "anatomy.h5", inputs / "cells.h5", inputs / "gpu.csv",
                            settings)
        t0 = time.perf_counter()
        out[name] = (run_shard(job, None, run, progress=False), time.perf_counter() - t0)
    cpu, cuda = out["cpu"][0], out["cuda"][0]
    scale = float(np.abs(cpu.ecg).max())
    return {"model": model,
            "activation_max_diff_ms": float(np.nanmax(np.abs(cpu.activation_ms
                                                             - cuda.activation_ms))),
            "ecg_rel_diff": float(np.abs(cpu.ecg - cuda.ecg).max() / scale),
            "wall_s": {"cpu": round(out["cpu"][1], 1), "cuda": round(out["cuda"][1], 1)}}


def _profiled(prep: Any, batch: int, steps: int) -> list[Any]:
    """The torch profiler's CUDA kernel averages over ``steps`` compiled steps of the heart
    ``prep`` with ``batch`` normal beats (after a warm-up that compiles)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from pipeline.monodomain.batch import build_problem
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.monodomain.throughput import _run_steps
    from pipeline.params import SimParams

    specs = [SimParams(sim_id=b, pattern="normal", sigma_l=0.15, sigma_t=0.04,
                       sigma_fast_endo=0.8, seed=b) for b in range(batch)]
    problem = build_problem(prep, specs, dt_ms=0.04, duration_ms=0.04 * (steps + 3))
    solver = MonodomainSolver(problem, device="cuda", compile=True, check_every=10 ** 9)
    _run_steps(solver, 3)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        _run_steps(solver, steps)
        torch.cuda.synchronize()
    return [e for e in prof.key_averages() if e.device_type.name == "CUDA"]


def _kernels_per_step(resolution: float = 1.0, steps: int = 20) -> float:
    """CUDA kernel launches per compiled step of the 1 mm heart (B = 8)."""
    from pipeline.monodomain.batch import prepare_anatomy
    from pipeline.monodomain.throughput import _heart

    kernels = _profiled(prepare_anatomy(_heart(None, resolution)), 8, steps)
    return sum(e.count for e in kernels) / steps


def _kernel_times(resolution: float = 1.0, batches: tuple[int, ...] = (8, 64),
                  steps: int = 20, top: int = 8) -> dict[str, Any]:
    """Device time per compiled step of the 1 mm heart, in all and for the ``top`` kernels,
    at each batch size: where a batch's step grows faster than its work, the kernel that
    grows is named (session 27: B = 64 took 5.5 ms per step, 8 x B = 8 took 3.5 ms).

    Returns
    -------
    dict
        ``batch_{B}``: ``us_per_step`` (all kernels and host-to-device copies),
        ``result_copy_us`` (the device-to-host copies of the run's result, once per run, in
        all), and ``kernels``, a list of ``name`` (80 characters at most), ``per_step``
        (launches), ``us_per_step``, largest first. The steps are the run's first (the
        sites' stimuli are on), as in the throughput rows.
    """
    import torch

    from pipeline.monodomain.batch import prepare_anatomy
    from pipeline.monodomain.throughput import _heart

    def device_us(e: Any) -> float:
        t = getattr(e, "device_time_total", None)        # cuda_time_total before torch 2.4
        return float(getattr(e, "cuda_time_total", 0.0) if t is None else t)

    prep = prepare_anatomy(_heart(None, resolution))
    out: dict[str, Any] = {"resolution_mm": resolution, "steps": steps}
    for batch in batches:
        events = _profiled(prep, batch, steps)
        # the run's result (activation, repolarisation, final Vm) comes back once, after
        # the last step: not part of a step's cost (345 of the 560 us per step profiled at
        # B = 8 in session 28)
        copies = [e for e in events if e.key.startswith("Memcpy DtoH")]
        kernels = sorted((e for e in events if e not in copies), key=device_us, reverse=True)
        out[f"batch_{batch}"] = {
            "us_per_step": round(sum(device_us(e) for e in kernels) / steps, 1),
            "result_copy_us": round(sum(device_us(e) for e in copies), 1),
            "kernels": [{"name": e.key[:80], "per_step": round(e.count / steps, 2),
                         "us_per_step": round(device_us(e) / steps, 1)}
                        for e in kernels[:top]]}
        torch.cuda.empty_cache()
    return out


def _memory(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Bytes per voxel-simulation from two batch sizes of one heart; the largest batch."""
    import torch

    one = [r for r in rows if "peak_cuda_MB" in r and r.get("resolution_mm") == 1.0]
    if len(one) < 2:
        return {"error": "fewer than two 1 mm CUDA rows"}
    a, b = sorted(one, key=lambda r: r["batch"])[:: len(one) - 1]
    per = (b["peak_cuda_MB"] - a["peak_cuda_MB"]) * 2**20 / ((b["batch"] - a["batch"])
                                                           * a["n_voxels"])
    free, total = torch.cuda.mem_get_info()
    fixed = a["peak_cuda_MB"] * 2**20 - per * a["batch"] * a["n_voxels"]
    return {"bytes_per_voxel_simulation": round(per, 1), "fixed_MB": round(fixed / 2**20, 1),
            "device_total_GB": round(total / 2**30, 1),
            "max_batch_1mm": int((free - fixed) // (per * a["n_voxels"]))}


def gpu_check(out: Path, folder: Path, quick: bool = False,
              budget_s: float | None = None, device: str = "cuda",
              skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the checks of the module docstring and write them to ``out`` (JSON).

    ``skip``: names of sections not to run (each recorded as ``{"skipped": "asked"}``), as
    when an earlier call on the same machine measured them.

    The sections run in order of importance (agreement, Niederer, kernels per step,
    chained steps, throughput, layout, kernel times, memory), and ``out`` is rewritten after
    each, so a run
    stopped early still leaves what it measured. A section that raises is recorded as
    ``{"error": ...}`` and the next one runs. With ``budget_s`` a section (and a
    throughput row) is skipped (``{"skipped": ...}``) once that many seconds have passed
    since the start; the memory figures, read from the throughput rows, never are.

    ``device="cpu"`` runs the same sections on the CPU (the kernel count and the device
    memory are CUDA's alone and say so): a check of the bench itself, so that a lent GPU's
    minutes are not spent finding its errors.

    Raises
    ------
    InputError
        No CUDA device.
    """
    import torch

    from pipeline.monodomain.niederer import run_niederer
    from pipeline.monodomain.throughput import measure_all

    if device not in ("cuda", "cpu"):
        raise InputError(f"pipeline bench gpu --device {device!r}: expected 'cuda' or 'cpu'")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("pipeline bench gpu needs a CUDA device; torch.cuda.is_available() "
                         "is False on this machine")
    t0 = time.perf_counter()
    deadline = None if budget_s is None else t0 + budget_s   # for the throughput rows
    result: dict[str, Any] = {"device": (torch.cuda.get_device_name(0) if device == "cuda"
                                         else f"cpu (dry run, {torch.get_num_threads()} "
                                              "threads)"),
                              "torch": torch.__version__, "quick": quick}
    sections: list[tuple[str, Any]] = [
        ("agreement", lambda: [_agreement(folder, m, device)
                               for m in ("monodomain", "reaction_eikonal")]),
        ("niederer", lambda: [run_niederer(dx, dt, device=device, compile=True).as_dict()
                              for dx, dt in ((0.2, 0.02), (0.1, 0.01))[: 1 if quick else 2]]),
        ("kernels_per_step", _kernels_per_step if device == "cuda"
         else lambda: {"skipped": "CUDA kernel launches: CUDA only"}),
        ("chained", lambda: measure_all(None, [2.0], [8], ["compiled"], steps=200, threads=2,
                                        device=device, timeout_s=300.0,
                                        models=["reaction_eikonal"], steps_per_call=[1, 8],
                                        deadline=deadline)),
        ("throughput", lambda: measure_all(
            None, [1.0] if quick else [1.0, 0.5], [1, 8] if quick else [1, 8, 64],
            ["compiled"], steps=50, threads=2, device=device, timeout_s=300.0,
            deadline=deadline)),
        ("layout", lambda: measure_all(
            None, [1.0], [8] if quick else [8, 64], ["compiled"], steps=50, threads=2,
            device=device, timeout_s=300.0, deadline=deadline, layouts=["voxel"])),
        ("kernel_times", (lambda: _kernel_times(batches=(8,) if quick else (8, 64)))
         if device == "cuda" else lambda: {"skipped": "CUDA kernel times: CUDA only"}),
        ("memory", lambda: (_memory(result["throughput"]
                                    if isinstance(result.get("throughput"), list) else [])
                            if device == "cuda" else {"skipped": "device memory: CUDA only"})),
    ]
    assert [name for name, _ in sections[:-1]] == list(SECTIONS)
    sections = [(name, (lambda: {"skipped": "asked (--skip)"}) if name in skip else run)
                for name, run in sections]
    return run_sections(sections, out, result, budget_s)


def run_sections(sections: list[tuple[str, Any]], out: Path, result: dict[str, Any],
                 budget_s: float | None = None,
                 always: tuple[str, ...] = ("memory",)) -> dict[str, Any]:
    """Run ``(name, callable)`` sections in order into ``result[name]``, rewriting ``out``
    (JSON, atomically) after each.

    A section that raises gives ``{"error": "Type: message"}`` and the next one runs.
    With ``budget_s``, a section that would start that many seconds after the first gives
    ``{"skipped": ...}``, except those named in ``always`` (cheap summaries of earlier
    sections). ``result["wall_s"][name]`` is each run section's wall time (s).
    """
    from pipeline.io import write_json

    t0 = time.perf_counter()
    result.setdefault("wall_s", {})
    for name, run in sections:
        elapsed = time.perf_counter() - t0
        if budget_s is not None and elapsed > budget_s and name not in always:
            result[name] = {"skipped": f"{elapsed:.0f} s had passed (budget {budget_s:g} s)"}
        else:
            start = time.perf_counter()
            try:
                result[name] = run()
            except Exception as exc:   # recorded; the next section still runs
                log.exception("section %s failed", name)
                result[name] = {"error": f"{type(exc).__name__}: {exc}"}
            result["wall_s"][name] = round(time.perf_counter() - start, 1)
            log.info("section %s: %.1f s", name, result["wall_s"][name])
        write_json(out, result)
    return result
