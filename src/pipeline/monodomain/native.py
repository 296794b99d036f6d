"""The explicit TP06 monodomain step as one hand-written CPU kernel, built on first use.

``native_step.cpp`` (beside this module) holds the whole pointwise work of an explicit
step in one pass per voxel-simulation: the 18-neighbour diffusion current, the TP06 step
of :func:`pipeline.cell.tp06.step_states`, ``V += dt I_d`` and the crossing times of
:func:`pipeline.monodomain.splitting.crossings`. It is plain C++ (no Python or torch
headers), vectorised by the compiler (``#pragma omp simd`` over voxels, inline
polynomial ``exp``/``log`` so that no call breaks the vector loop) and threaded with
OpenMP. :func:`library` compiles it with the system C++ compiler (``$CXX``, else ``g++``,
the compiler ``torch.compile`` needs anyway) into a cache directory
(``$PIPELINE_NATIVE_CACHE``, else ``~/.cache/pipeline/native``), keyed by the source, the
flags and the compiler version, and loads it with :mod:`ctypes`. A build writes a
temporary file and renames it, so concurrent jobs on a shared home never load half a
library; the instruction-set flags are part of the key, so a cluster node without AVX2
builds its own generic copy instead of loading one that would not run.

Why: compiled by inductor, the TP06 step ran as several loops that each recompute shared
subexpressions (measured on the 1 mm heart: the pointwise kernel 8.1 ms of a 10.2 ms
step). The native kernel is checked against the torch step (float32 round-off) and the
single-cell reference in ``tests/test_native.py``; ``pipeline bench throughput --mode
native`` measures it.

Where it runs (:class:`~pipeline.monodomain.solver.MonodomainSolver` with ``native=None``):
float32 on the CPU when the step is compiled and diffusion is explicit. Any other case,
or a failed build (logged with the compiler's message), uses the torch step.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch

from pipeline.cell.tp06 import N_STATES, TP06Params

log = logging.getLogger(__name__)

#: The kernel's source, shipped with the package.
SOURCE = Path(__file__).with_name("native_step.cpp")
#: The calling convention the loader expects (``pipeline_native_abi()`` of the library).
ABI = 1
#: TP06 parameters in the order the kernel takes them (the fields of TP06Params).
PARAM_ORDER: tuple[str, ...] = (
    "g_Na", "g_K1", "g_to", "g_Kr", "g_Ks", "g_CaL", "g_bNa", "g_bCa", "g_pCa", "g_pK",
    "P_NaK", "K_NaCa", "endo")
#: Compiler flags besides the instruction set. No -ffast-math: the solver's blow-up
#: checks need NaN to survive; -fno-math-errno and -fno-trapping-math change no result.
#: The pre-register-allocation scheduler (off by default on x86) interleaves the cell
#: model's long exp-divide chains: 6-12 % faster, measured.
BASE_FLAGS: tuple[str, ...] = ("-O3", "-std=c++17", "-fPIC", "-shared", "-fopenmp",
                               "-fno-math-errno", "-fno-trapping-math", "-fschedule-insns",
                               "-fsched-pressure")


class NativeUnavailable(RuntimeError):
    """The native kernel cannot be built or loaded here (the message says why)."""


def isa_flags() -> tuple[str, tuple[str, ...]]:
    """The instruction-set tag and flags for this CPU: AVX2 + FMA where it has them."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
        flags = set()
        for line in text.splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        if {"avx2", "fma"} <= flags:
            return "avx2", ("-mavx2", "-mfma")
    return "generic", ()


def cache_dir() -> Path:
    """Where built libraries are kept (``$PIPELINE_NATIVE_CACHE`` or the user cache)."""
    env = os.environ.get("PIPELINE_NATIVE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipeline" / "native"


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise NativeUnavailable("no C++ compiler found ($CXX, g++ or c++)")
    return cxx


def build(directory: Path | None = None) -> Path:
    """Compile the kernel (once per source, flags and compiler) and return the library path.

    Raises
    ------
    NativeUnavailable
        No compiler, or the compiler failed (its last lines in the message).
    """
    cxx = _compiler()
    tag, isa = isa_flags()
    flags = (*BASE_FLAGS, *isa)
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeUnavailable(f"C++ compiler {cxx!r} does not run: {exc}") from exc
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode()
                         + version.encode()).hexdigest()[:16]
    out_dir = directory or cache_dir()
    path = out_dir / f"tp06_step_{tag}_{key}.so"
    if path.exists():
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{path.name}.{os.getpid()}.tmp"
    cmd = [cxx, *flags, str(SOURCE), "-o", str(tmp)]
    log.info("building the native TP06 step: %s", " ".join(cmd))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeUnavailable(f"compiling {SOURCE.name} failed: {exc}") from exc
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise NativeUnavailable(f"compiling {SOURCE.name} with {cxx} failed "
                                f"(exit {done.returncode}): {tail}")
    os.replace(tmp, path)
    return path


@functools.cache
def library() -> ctypes.CDLL:
    """The loaded kernel library (built on first use; cached for the process)."""
    path = build()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise NativeUnavailable(f"loading {path} failed: {exc}") from exc
    if lib.pipeline_native_abi() != ABI:
        raise NativeUnavailable(f"{path} has calling convention {lib.pipeline_native_abi()}, "
                                f"expected {ABI}")
    p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    lib.tp06_monodomain_step.restype = None
    lib.tp06_monodomain_step.argtypes = [
        p, p, p, p, i64, f32, p, p, p, p, p, p, p, p, i64, i64, i64, i64, f32, f32, f32,
        ctypes.c_int]
    return lib


def available() -> tuple[bool, str]:
    """Whether the kernel builds and loads here, and if not why."""
    try:
        library()
    except NativeUnavailable as exc:
        return False, str(exc)
    return True, ""


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class NativeStep:
    """The native explicit step for one batch: ``(state, act, rep, t, i_stim) -> same``.

    Parameters
    ----------
    params
        TP06 parameters broadcastable to (B, n) (float32 after conversion).
    neighbour
        (n, K) neighbour table of the stencil (None with ``coef`` None).
    coef
        (B, n, K) per-simulation coefficient tables (uA/mm^3 per mV), or None when the
        diffusion current is passed to each call (shared tables).
    diff_factor
        uA/mm^3 -> mV/ms.
    dt, v_rep
        Time step (ms) and the repolarisation threshold of the crossings (mV).
    batch, n
        B simulations of n voxels.

    Raises
    ------
    NativeUnavailable
        The library cannot be built or loaded.
    """

    def __init__(self, params: TP06Params, neighbour: torch.Tensor | None,
                 coef: torch.Tensor | None,
                 diff_factor: float, dt: float, v_rep: float, batch: int, n: int) -> None:
        names = tuple(f.name for f in dataclasses.fields(TP06Params))
        if names != PARAM_ORDER:
            raise NativeUnavailable(f"TP06Params fields {names} differ from the kernel's "
                                    f"{PARAM_ORDER}")
        self.lib = library()
        self.batch, self.n = int(batch), int(n)
        self.dt, self.v_rep, self.diff_factor = float(dt), float(v_rep), float(diff_factor)
        views = [getattr(params, k).to(device="cpu", dtype=torch.float32).expand(batch, n)
                 for k in PARAM_ORDER]
        self._params = views                      # keeps the buffers alive
        self._param_ptr = (ctypes.c_void_p * len(views))(*(v.data_ptr() for v in views))
        self._param_stride = (ctypes.c_int64 * (2 * len(views)))(
            *(s for v in views for s in v.stride()))
        # neighbour-major copies ((K, n), (B, K, n)): the kernel vectorises over voxels
        self.k, self.neighbour, self.coef = 0, None, None
        if coef is not None:
            if neighbour is None:
                raise ValueError("coefficient tables need their neighbour table")
            self.k = int(neighbour.shape[1])
            self.neighbour = neighbour.to(device="cpu", dtype=torch.int32).t().contiguous()
            self.coef = coef.to(device="cpu", dtype=torch.float32).expand(
                batch, n, -1).transpose(1, 2).contiguous()

    def __call__(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
                 t: torch.Tensor | float, i_stim: torch.Tensor | float,
                 i_diff: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step; fresh output tensors, the inputs untouched.

        ``state`` (19, B, n), ``act``/``rep`` (B, n) ms, ``t`` (ms) at the step's start,
        ``i_stim`` broadcastable to (B, n) pA/pF; ``i_diff`` (B, n) mV/ms is required when
        the step was built without coefficient tables.
        """
        b, n = self.batch, self.n
        if state.shape != (N_STATES, b, n) or state.dtype != torch.float32:
            raise ValueError(f"native step expects a float32 state (19, {b}, {n}), got "
                             f"{state.dtype} {tuple(state.shape)}")
        if self.coef is None and i_diff is None:
            raise ValueError("this native step has no coefficient tables: pass i_diff")
        state = state.contiguous()
        act, rep = act.contiguous(), rep.contiguous()
        stim = torch.as_tensor(i_stim, dtype=torch.float32).expand(b, n)
        diff = None if i_diff is None or self.coef is not None else \
            i_diff.to(torch.float32).contiguous()
        out = torch.empty_like(state)
        act_out, rep_out = torch.empty_like(act), torch.empty_like(rep)
        self.lib.tp06_monodomain_step(
            state.data_ptr(), out.data_ptr(), _ptr(self.neighbour),
            _ptr(self.coef), self.k, self.diff_factor, _ptr(diff),
            act.data_ptr(), act_out.data_ptr(), rep.data_ptr(), rep_out.data_ptr(),
            self._param_ptr, self._param_stride,
            stim.data_ptr(), stim.stride(0), stim.stride(1),
            b, n, float(t), self.dt, self.v_rep, torch.get_num_threads())
        return out, act_out, rep_out
