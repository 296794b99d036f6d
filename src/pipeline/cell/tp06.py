"""The ten Tusscher-Panfilov 2006 human ventricular cell model (TP06) as one pure step.

Source: K.H.W.J. ten Tusscher and A.V. Panfilov, "Alternans and spiral breakup in a
human ventricular tissue model", Am J Physiol Heart Circ Physiol 291:H1088-H1100 (2006),
in the form of its CellML version (physiome workspace 604: ``ten_tusscher_model_2006_
{endo,epi,M}.cellml``; the f2 gate and the buffered calcium equations follow CellML).
Three cell types as in the paper: epi (g_to 0.294, g_Ks 0.392 nS/pF), M (g_to 0.294,
g_Ks 0.098), endo (g_to 0.073, g_Ks 0.392, and the slower endocardial s-gate).

The state is one tensor ``(19, *batch)`` in the order of :data:`STATE_NAMES` (index 0 is
the membrane potential V in mV; concentrations in mM; gates dimensionless). The membrane
equation is

    dV/dt = -(I_K1 + I_to + I_Kr + I_Ks + I_CaL + I_NaK + I_Na + I_bNa + I_NaCa
              + I_bCa + I_pK + I_pCa + I_stim)          [pA/pF = mV/ms]

and the stimulus current also enters dK_i/dt, as in the CellML version. :func:`step`
advances one time step: Rush-Larsen (exact exponential for frozen V) for the twelve
Hodgkin-Huxley gates and for R' (linear in itself), forward Euler for V and the four
concentrations with the rapid-buffering factors of CellML. The function is branch-free
(``torch.where`` only), so ``torch.compile`` fuses it into one elementwise kernel; it works
as well in eager mode, on CPU or CUDA, in float32 or float64 (float64 recommended for
pacing to steady state: K_i changes by less than one float32 ulp per step).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import torch

from pipeline.errors import InputError, SimulationError

log = logging.getLogger(__name__)

#: Names of the 19 state variables, in tensor order (V first).
STATE_NAMES: tuple[str, ...] = (
    "V", "K_i", "Na_i", "Ca_i", "Ca_SR", "Ca_ss", "R_prime",
    "Xr1", "Xr2", "Xs", "m", "h", "j", "d", "f", "f2", "fCass", "s", "r",
)
N_STATES: int = len(STATE_NAMES)
#: Index of each state in the state tensor.
STATE_INDEX: dict[str, int] = {name: i for i, name in enumerate(STATE_NAMES)}
#: Cell-type codes; they match the ``celltype`` field of ``anatomy.h5`` (0 = no tissue).
CELLTYPES: dict[str, int] = {"endo": 1, "M": 2, "epi": 3}
CELLTYPE_NAMES: dict[int, str] = {code: name for name, code in CELLTYPES.items()}

# ---------------------------------------------------------------- physical constants
R_GAS = 8314.472          # mJ/(mol K)
T_K = 310.0               # K
F_FARADAY = 96485.3415    # C/mol
RTF = R_GAS * T_K / F_FARADAY   # mV (26.71)
FRT = 1.0 / RTF                 # 1/mV
CM = 0.185                # uF (cell capacitance)
V_C = 0.016404            # nL, cytoplasmic volume
V_SR = 0.001094           # nL, sarcoplasmic reticulum
V_SS = 0.00005468         # nL, subspace
K_O, NA_O, CA_O = 5.4, 140.0, 2.0   # mM, extracellular
P_KNA = 0.03
# sodium-potassium pump, Na-Ca exchanger, pumps
K_MK, K_MNA = 1.0, 40.0
K_SAT, ALPHA_NACA, GAMMA_NACA, KM_CA, KM_NAI = 0.1, 2.5, 0.35, 1.38, 87.5
K_PCA = 0.0005
# calcium handling
K1_PRIME, K2_PRIME, K3, K4 = 0.15, 0.045, 0.060, 0.005
EC, MAX_SR, MIN_SR = 1.5, 2.5, 1.0
V_REL, V_XFER, K_UP, V_LEAK, VMAX_UP = 0.102, 0.0038, 0.00025, 0.00036, 0.006375
BUF_C, K_BUF_C = 0.2, 0.001
BUF_SR, K_BUF_SR = 10.0, 0.3
BUF_SS, K_BUF_SS = 0.4, 0.00025
# derived volume/charge factors
CM_VCF = CM / (V_C * F_FARADAY)   # (mM/ms)/(pA/pF) for monovalent ions
CM_2VCF = CM_VCF / 2.0
CM_2VSSF = CM / (2.0 * V_SS * F_FARADAY)
SQRT_KO = math.sqrt(K_O / 5.4)
LOG_K_O, LOG_NA_O, LOG_CA_O = math.log(K_O), math.log(NA_O), math.log(CA_O)
LOG_KS_O = math.log(K_O + P_KNA * NA_O)

#: Default conductances and pump rates (nS/pF or pA/pF) shared by the three cell types.
BASE_CONDUCTANCES: dict[str, float] = {
    "g_Na": 14.838, "g_K1": 5.405, "g_to": 0.294, "g_Kr": 0.153, "g_Ks": 0.392,
    "g_CaL": 3.980e-5, "g_bNa": 2.9e-4, "g_bCa": 5.92e-4, "g_pCa": 0.1238, "g_pK": 0.0146,
    "P_NaK": 2.724, "K_NaCa": 1000.0,
}
#: Cell-type differences of the 2006 paper.
CELLTYPE_CONDUCTANCES: dict[str, dict[str, float]] = {
    "endo": {"g_to": 0.073, "g_Ks": 0.392},
    "M": {"g_to": 0.294, "g_Ks": 0.098},
    "epi": {"g_to": 0.294, "g_Ks": 0.392},
}

#: Steady states at BCL 1000 ms, G_Kr x 1 (this implementation: stimulus -52 pA/pF x 1 ms,
#: dt 0.02 ms, 120 beats from the reference state of tp06_single_cell.json; `pipeline cells`),
#: the state at the start of a beat, in the order of STATE_NAMES.
STEADY_STATE_1000: dict[str, tuple[float, ...]] = {
    "endo": (
        -85.4755, 136.133, 9.41873, 0.000102031, 3.37906, 0.000210403, 0.989129, 0.000204706,
        0.473726, 0.00320969, 0.00162826, 0.751576, 0.751208, 3.26362e-05, 0.977258, 0.999414,
        0.999973, 0.640626, 2.31984e-08),
    "M": (
        -85.3144, 136.174, 9.25136, 0.000115283, 4.11658, 0.000232024, 0.987416, 0.000213022,
        0.472053, 0.00333716, 0.00168495, 0.747202, 0.746382, 3.33447e-05, 0.959557, 0.999183,
        0.999961, 0.999998, 2.38302e-08),
    "epi": (
        -85.4372, 135.9, 9.63268, 0.000103969, 3.47765, 0.00021217, 0.989175, 0.000205856,
        0.473328, 0.00321774, 0.00164157, 0.750543, 0.750166, 3.28032e-05, 0.977156, 0.999412,
        0.999973, 0.999998, 2.33469e-08),
}


@dataclasses.dataclass(frozen=True)
class TP06Params:
    """Per-cell parameters of TP06: tensors broadcastable to the batch shape.

    Conductances in nS/pF (g_CaL in cm^3/(uF s) as in CellML), pump and exchanger rates in
    pA/pF. ``endo`` is 1 where a cell uses the endocardial s-gate, else 0.
    """

    g_Na: torch.Tensor
    g_K1: torch.Tensor
    g_to: torch.Tensor
    g_Kr: torch.Tensor
    g_Ks: torch.Tensor
    g_CaL: torch.Tensor
    g_bNa: torch.Tensor
    g_bCa: torch.Tensor
    g_pCa: torch.Tensor
    g_pK: torch.Tensor
    P_NaK: torch.Tensor
    K_NaCa: torch.Tensor
    endo: torch.Tensor

    def to(self, dtype: torch.dtype | None = None,
           device: torch.device | str | None = None) -> TP06Params:
        """A copy with every tensor moved to ``dtype``/``device``."""
        return TP06Params(**{f.name: getattr(self, f.name).to(dtype=dtype, device=device)
                             for f in dataclasses.fields(self)})

    def broadcast_shape(self) -> torch.Size:
        """The broadcast shape of all parameter tensors."""
        return torch.broadcast_shapes(*(getattr(self, f.name).shape
                                        for f in dataclasses.fields(self)))


#: Names of the parameters a caller may scale in :func:`make_params`.
SCALABLE: tuple[str, ...] = tuple(BASE_CONDUCTANCES)


def celltype_codes(celltype: str | int | torch.Tensor | Sequence[str],
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Integer cell-type codes (1 endo, 2 M, 3 epi) from names or codes.

    Raises
    ------
    InputError
        For an unknown name or a code outside {1, 2, 3}.
    """
    if isinstance(celltype, str):
        if celltype not in CELLTYPES:
            raise InputError(f"unknown cell type {celltype!r}; expected one of {list(CELLTYPES)}")
        return torch.tensor(CELLTYPES[celltype], dtype=torch.int64, device=device)
    if isinstance(celltype, (list, tuple)):
        return torch.stack([celltype_codes(c, device) for c in celltype])
    codes = torch.as_tensor(celltype, device=device)
    if codes.is_floating_point() or codes.dtype == torch.bool:
        raise InputError(f"cell-type codes must be integers, got dtype {codes.dtype}")
    codes = codes.to(torch.int64)
    bad = (codes < 1) | (codes > 3)
    if bool(bad.any()):
        value = int(codes[bad].flatten()[0])
        raise InputError(f"unknown cell-type code {value}; expected 1 (endo), 2 (M) or 3 (epi)")
    return codes


def make_params(celltype: str | int | torch.Tensor | Sequence[str], *,
                dtype: torch.dtype = torch.float64,
                device: torch.device | str | None = None,
                **conductance_scales: float | torch.Tensor) -> TP06Params:
    """Parameters for one cell type or a tensor of per-cell codes.

    Parameters
    ----------
    celltype
        ``"endo"``, ``"M"``, ``"epi"``, or an integer tensor of codes (1, 2, 3) with the
        batch shape (per-voxel types).
    dtype, device
        Of the returned tensors.
    **conductance_scales
        Multipliers of the defaults, by parameter name (``g_Kr=0.5``, ``g_Ks=tensor``);
        any of :data:`SCALABLE`. Tensors must broadcast to the batch shape.

    Returns
    -------
    TP06Params
        Tensors of the broadcast shape of ``celltype`` and the scales (0-d if all scalar).
    """
    unknown = sorted(set(conductance_scales) - set(SCALABLE))
    if unknown:
        raise InputError(f"unknown TP06 parameter(s) {unknown}; scalable are {list(SCALABLE)}")
    codes = celltype_codes(celltype, device)
    values: dict[str, torch.Tensor] = {}
    for name, base in BASE_CONDUCTANCES.items():
        if name in ("g_to", "g_Ks"):
            table = torch.tensor([0.0] + [CELLTYPE_CONDUCTANCES[CELLTYPE_NAMES[c]][name]
                                          for c in (1, 2, 3)], dtype=dtype, device=device)
            value = table[codes]
        else:
            value = torch.tensor(base, dtype=dtype, device=device)
        scale = conductance_scales.get(name)
        if scale is not None:
            scale_t = torch.as_tensor(scale, dtype=dtype, device=device)
            try:
                value = value * scale_t
            except RuntimeError as exc:
                raise InputError(f"scale of {name} has shape {tuple(scale_t.shape)}, which does "
                                 f"not broadcast with cell types {tuple(codes.shape)}") from exc
        values[name] = value
    values["endo"] = (codes == CELLTYPES["endo"]).to(dtype)
    return TP06Params(**values)


def initial_state(celltype: str | int | torch.Tensor | Sequence[str],
                  batch_shape: Sequence[int] = (), *,
                  dtype: torch.dtype = torch.float64,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """The steady state at the start of a beat (BCL 1000 ms, G_Kr x 1) for each cell.

    Parameters
    ----------
    celltype
        A name, or integer codes whose shape broadcasts to ``batch_shape``.
    batch_shape
        Shape behind the state axis; defaults to the shape of ``celltype``.

    Returns
    -------
    Tensor
        ``(19, *batch_shape)``.
    """
    codes = celltype_codes(celltype, device)
    shape = torch.broadcast_shapes(tuple(batch_shape), codes.shape)
    table = torch.tensor([STEADY_STATE_1000[CELLTYPE_NAMES[c]] for c in (1, 2, 3)],
                         dtype=dtype, device=device)          # (3, 19)
    state = table[(codes - 1).expand(shape)]                  # (*shape, 19)
    return state.movedim(-1, 0).clone(memory_format=torch.contiguous_format)


def _rl(gate: torch.Tensor, inf: torch.Tensor, tau: torch.Tensor,
        dt: float | torch.Tensor) -> torch.Tensor:
    """Rush-Larsen update: exact solution of dg/dt = (inf - g)/tau for fixed V."""
    return inf + (gate - inf) * torch.exp(-dt / tau)


def _rl_rate(gate: torch.Tensor, inf: torch.Tensor, rate: torch.Tensor,
             dt: float | torch.Tensor) -> torch.Tensor:
    """Rush-Larsen update from the rate 1/tau (1/ms): saves the division of :func:`_rl`."""
    return inf + (gate - inf) * torch.exp(-dt * rate)


def step(state: torch.Tensor, params: TP06Params, i_stim: torch.Tensor | float,
         dt: float | torch.Tensor) -> torch.Tensor:
    """Advance every cell by one time step.

    Parameters
    ----------
    state
        ``(19, *batch)``, order :data:`STATE_NAMES`.
    params
        Tensors broadcastable to ``batch``.
    i_stim
        Stimulus current (pA/pF; negative depolarises), broadcastable to ``batch``.
    dt
        Time step (ms), positive; a Python float or a 0-d tensor (a tensor avoids a
        recompilation per value under ``torch.compile``).

    Returns
    -------
    Tensor
        The new state, ``(19, *batch)``, same dtype and device.
    """
    if state.shape[0] != N_STATES:
        raise InputError(f"TP06 state must have {N_STATES} rows (states) first, "
                         f"got shape {tuple(state.shape)}")
    if isinstance(dt, (int, float)) and not dt > 0:
        raise InputError(f"time step dt must be positive, got {dt} ms")
    return torch.stack(step_states(state.unbind(0), params, i_stim, dt))


def step_states(states: Sequence[torch.Tensor], params: TP06Params,
                i_stim: torch.Tensor | float,
                dt: float | torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`step` on the 19 states as separate tensors (no stacking).

    Chaining several steps on tuples lets ``torch.compile`` fuse them into one loop
    without materialising the stacked state in between (see :mod:`pipeline.cell.pacing`).
    """
    (V, K_i, Na_i, Ca_i, Ca_SR, Ca_ss, R_prime, Xr1, Xr2, Xs, m, h, j, d, f, f2, fCass, s,
     r) = states
    p = params
    exp = torch.exp

    # reversal potentials (mV): log(c_o / c_i) = log(c_o) - log(c_i), no division
    E_K = RTF * (LOG_K_O - torch.log(K_i))
    E_Na = RTF * (LOG_NA_O - torch.log(Na_i))
    E_Ks = RTF * (LOG_KS_O - torch.log(K_i + P_KNA * Na_i))
    E_Ca = 0.5 * RTF * (LOG_CA_O - torch.log(Ca_i))

    # currents (pA/pF)
    # alpha/(alpha + beta) of I_K1 with both denominators cleared (one division, not three)
    e_a = exp(0.06 * (V - E_K - 200.0))
    e_b = exp(-0.5 * (V - E_K))
    num_K1 = 0.1 * (1.0 + e_b)
    x_K1 = num_K1 / (num_K1 + (3.0 * exp(0.0002 * (V - E_K + 100.0))
                               + exp(0.1 * (V - E_K - 10.0))) * (1.0 + e_a))
    i_K1 = p.g_K1 * SQRT_KO * x_K1 * (V - E_K)
    i_to = p.g_to * r * s * (V - E_K)
    i_Kr = p.g_Kr * SQRT_KO * Xr1 * Xr2 * (V - E_K)
    i_Ks = p.g_Ks * Xs * Xs * (V - E_Ks)
    i_Na = p.g_Na * m * m * m * h * j * (V - E_Na)
    i_bNa = p.g_bNa * (V - E_Na)
    i_bCa = p.g_bCa * (V - E_Ca)
    # L-type: GHK flux; (V - 15)/(exp(z) - 1) -> RT/(2F) (1 - z/2) near z = 0
    z = 2.0 * (V - 15.0) * FRT
    small = torch.abs(z) < 1e-4
    ghk = torch.where(small, 0.5 * RTF * (1.0 - 0.5 * z),
                      (V - 15.0) / torch.expm1(torch.where(small, torch.ones_like(z), z)))
    e_frt = exp(-V * FRT)       # shared by I_CaL, I_NaK and I_NaCa
    # exp(z) = exp(-30 F/RT) / exp(-V F/RT)^2: one exponential fewer
    i_CaL = p.g_CaL * d * f * f2 * fCass * 4.0 * F_FARADAY * FRT \
        * (0.25 * Ca_ss * (math.exp(-30.0 * FRT) / (e_frt * e_frt)) - CA_O) * ghk
    i_NaK = p.P_NaK * (K_O / (K_O + K_MK)) * Na_i \
        / ((Na_i + K_MNA) * (1.0 + 0.1245 * exp(-0.1 * V * FRT) + 0.0353 * e_frt))
    e_g = exp(GAMMA_NACA * V * FRT)
    e_g1 = e_g * e_frt          # exp((gamma - 1) V F/RT)
    i_NaCa = p.K_NaCa * (e_g * Na_i * Na_i * Na_i * CA_O
                         - e_g1 * NA_O ** 3 * Ca_i * ALPHA_NACA) \
        / ((KM_NAI ** 3 + NA_O ** 3) * (KM_CA + CA_O) * (1.0 + K_SAT * e_g1))
    i_pCa = p.g_pCa * Ca_i / (Ca_i + K_PCA)
    i_pK = p.g_pK * (V - E_K) / (1.0 + exp((25.0 - V) * (1.0 / 5.98)))

    i_ion = (i_K1 + i_to + i_Kr + i_Ks + i_CaL + i_NaK + i_Na + i_bNa + i_NaCa + i_bCa
             + i_pK + i_pCa)

    # gates (Rush-Larsen); where tau is a product or a reciprocal sum, the rate 1/tau is
    # formed directly, and divisions by constants are written as products (C compilers
    # keep them as divides without fast-math): the step's cost is mostly exp and divide.
    # The gates' exp((V + a)/b) of equal scale b share one exp(V/b) (times the constant
    # exp(a/b), folded by the compiler): 19 exponentials become 3, 2 square roots
    # (exp(V/10) = sqrt(exp(V/5)), exp(V/20) = sqrt(exp(V/10))) and 2 reciprocals
    e5, e7 = exp(V * (1.0 / 5.0)), exp(V * (1.0 / 7.0))
    e10 = torch.sqrt(e5)
    e20 = torch.sqrt(e10)
    e6n = exp(V * (-1.0 / 6.0))
    e10n, e20n = 1.0 / e10, 1.0 / e20
    Xr1_n = _rl_rate(Xr1, e7 / (e7 + math.exp(-26.0 / 7.0)),
                     (1.0 + math.exp(-4.5) * e10n)
                     * (1.0 + exp((V + 30.0) * (1.0 / 11.5))) * (1.0 / 2700.0), dt)
    Xr2_n = _rl_rate(Xr2, 1.0 / (1.0 + exp((V + 88.0) * (1.0 / 24.0))),
                     (1.0 + math.exp(-3.0) * e20n) * (1.0 + math.exp(-3.0) * e20)
                     * (1.0 / 3.36), dt)
    Xs_n = _rl(Xs, 1.0 / (1.0 + exp((-5.0 - V) * (1.0 / 14.0))),
               1400.0 * torch.rsqrt(1.0 + math.exp(5.0 / 6.0) * e6n)
               / (1.0 + exp((V - 35.0) * (1.0 / 15.0))) + 80.0, dt)
    m_inf = 1.0 / (1.0 + exp((-56.86 - V) * (1.0 / 9.03))) ** 2
    # tau_m = 1/(1+e1) (0.1/(1+e2) + 0.1/(1+e3)), 1 + e1 = (e5 + exp(-12)) / e5
    m_2 = 1.0 + math.exp(7.0) * e5
    m_3 = 1.0 + exp((V - 50.0) * (1.0 / 200.0))
    m_n = _rl_rate(m, m_inf, (e5 + math.exp(-12.0)) * m_2 * m_3 / (0.1 * e5 * (m_2 + m_3)), dt)
    hj_inf = 1.0 / (1.0 + exp((V + 71.55) * (1.0 / 7.43))) ** 2
    # h, j and s: where two branches each need an exponential, one exponential takes its
    # argument by branch (a compiled kernel evaluates both branches)
    low = V < -40.0
    alpha_h = torch.where(low, 0.057 * exp(-(V + 80.0) * (1.0 / 6.8)), torch.zeros_like(V))
    e_h = exp(torch.where(low, 0.079 * V, -(V + 10.66) * (1.0 / 11.1)))
    beta_h = torch.where(low, 2.7 * e_h + 3.1e5 * exp(0.3485 * V),
                         (0.77 / 0.13) / (1.0 + e_h))
    h_n = _rl_rate(h, hj_inf, alpha_h + beta_h, dt)
    alpha_j = torch.where(low, (-2.5428e4 * exp(0.2444 * V) - 6.948e-6 * exp(-0.04391 * V))
                          * (V + 37.78) / (1.0 + exp(0.311 * (V + 79.23))), torch.zeros_like(V))
    e_j = exp(torch.where(low, -0.01052 * V, 0.057 * V))
    beta_j = torch.where(low, 0.02424 * e_j / (1.0 + exp(-0.1378 * (V + 40.14))),
                         0.6 * e_j / (1.0 + math.exp(-3.2) * e10n))
    j_n = _rl_rate(j, hj_inf, alpha_j + beta_j, dt)
    d_n = _rl(d, 1.0 / (1.0 + exp((-8.0 - V) * (1.0 / 7.5))),
              (1.4 / (1.0 + exp((-35.0 - V) * (1.0 / 13.0))) + 0.25) * 1.4
              / (1.0 + math.exp(1.0) * e5)
              + 1.0 / (1.0 + math.exp(2.5) * e20n), dt)
    f_30 = 1.0 / (1.0 + math.exp(3.0) * e10)   # 1 / (1 + exp((V + 30)/10)), tau_f and tau_f2
    f_n = _rl(f, 1.0 / (1.0 + math.exp(20.0 / 7.0) * e7),
              1102.5 * exp(-(V + 27.0) ** 2 * (1.0 / 225.0))
              + 200.0 / (1.0 + math.exp(1.3) * e10n)
              + 180.0 * f_30 + 20.0, dt)
    f2_n = _rl(f2, 0.67 / (1.0 + math.exp(5.0) * e7) + 0.33,
               562.0 * exp(-(V + 27.0) ** 2 * (1.0 / 240.0))
               + 31.0 / (1.0 + math.exp(2.5) * e10n)
               + 80.0 * f_30, dt)
    q_cass = 1.0 / (1.0 + (Ca_ss * (1.0 / 0.05)) ** 2)
    fCass_n = _rl(fCass, 0.6 * q_cass + 0.4, 80.0 * q_cass + 2.0, dt)
    is_endo = p.endo > 0.5
    s_inf = torch.where(is_endo, 1.0 / (1.0 + math.exp(5.6) * e5),
                        1.0 / (1.0 + math.exp(4.0) * e5))
    e_s = exp(torch.where(is_endo, -(V + 67.0) ** 2 * (1.0 / 1000.0),
                          -(V + 45.0) ** 2 * (1.0 / 320.0)))
    tau_s = torch.where(is_endo, 1000.0 * e_s + 8.0,
                        85.0 * e_s + 5.0 / (1.0 + math.exp(-4.0) * e5) + 3.0)
    s_n = _rl(s, s_inf, tau_s, dt)
    r_n = _rl(r, 1.0 / (1.0 + math.exp(20.0 / 6.0) * e6n),
              9.5 * exp(-(V + 40.0) ** 2 * (1.0 / 1800.0)) + 0.8, dt)

    # calcium handling (mM/ms)
    ca_i2 = Ca_i * Ca_i
    i_up = VMAX_UP * ca_i2 / (ca_i2 + K_UP * K_UP)
    i_leak = V_LEAK * (Ca_SR - Ca_i)
    i_xfer = V_XFER * (Ca_ss - Ca_i)
    ca_sr2 = Ca_SR * Ca_SR
    kcasr = MAX_SR - (MAX_SR - MIN_SR) * ca_sr2 / (ca_sr2 + EC * EC)
    k2 = K2_PRIME * kcasr
    # O = k1 Ca_ss^2 R / (k3 + k1 Ca_ss^2) with k1 = k1' / kcasr, cleared of one division
    k1cass2 = K1_PRIME * Ca_ss * Ca_ss
    O = k1cass2 * R_prime / (K3 * kcasr + k1cass2)
    i_rel = V_REL * O * (Ca_SR - Ca_ss)
    # R' obeys dR/dt = k4 - (k2 Ca_ss + k4) R: exact exponential step
    rate_R = k2 * Ca_ss + K4
    R_inf = K4 / rate_R
    R_n = R_inf + (R_prime - R_inf) * exp(-dt * rate_R)

    # rapid buffering, 1 / (1 + B K / (c + K)^2) = (c + K)^2 / ((c + K)^2 + B K)
    c_i2, c_sr2, c_ss2 = (Ca_i + K_BUF_C) ** 2, (Ca_SR + K_BUF_SR) ** 2, (Ca_ss + K_BUF_SS) ** 2
    buf_i = c_i2 / (c_i2 + BUF_C * K_BUF_C)
    buf_sr = c_sr2 / (c_sr2 + BUF_SR * K_BUF_SR)
    buf_ss = c_ss2 / (c_ss2 + BUF_SS * K_BUF_SS)
    dCa_i = buf_i * (-(i_bCa + i_pCa - 2.0 * i_NaCa) * CM_2VCF
                     + (i_leak - i_up) * (V_SR / V_C) + i_xfer)
    dCa_SR = buf_sr * (i_up - i_rel - i_leak)
    dCa_ss = buf_ss * (-i_CaL * CM_2VSSF + i_rel * (V_SR / V_SS) - i_xfer * (V_C / V_SS))
    dNa_i = -(i_Na + i_bNa + 3.0 * i_NaK + 3.0 * i_NaCa) * CM_VCF
    dK_i = -(i_K1 + i_to + i_Kr + i_Ks + i_pK + i_stim - 2.0 * i_NaK) * CM_VCF
    dV = -(i_ion + i_stim)

    return (V + dt * dV, K_i + dt * dK_i, Na_i + dt * dNa_i, Ca_i + dt * dCa_i,
            Ca_SR + dt * dCa_SR, Ca_ss + dt * dCa_ss, R_n,
            Xr1_n, Xr2_n, Xs_n, m_n, h_n, j_n, d_n, f_n, f2_n, fCass_n, s_n, r_n)


def check_state(state: torch.Tensor, where: str = "") -> None:
    """Raise :class:`SimulationError` if any state is NaN/inf or |V| > 200 mV.

    The message names the state variable, the batch index of the first bad cell and its
    value; ``where`` (e.g. ``"t = 512.0 ms"``) is appended.
    """
    bad_nan = ~torch.isfinite(state)
    bad_v = state[0].abs() > 200.0
    if not bool(bad_nan.any()) and not bool(bad_v.any()):
        return
    suffix = f" at {where}" if where else ""
    if bool(bad_nan.any()):
        idx = [int(i) for i in torch.nonzero(bad_nan)[0]]
        name = STATE_NAMES[idx[0]]
        value = float(state[tuple(idx)])
        raise SimulationError(f"TP06 blow-up{suffix}: state {name} is {value} at batch index "
                              f"{tuple(idx[1:])}")
    idx = [int(i) for i in torch.nonzero(bad_v)[0]]
    value = float(state[0][tuple(idx)])
    raise SimulationError(f"TP06 blow-up{suffix}: state V = {value:.1f} mV (|V| > 200 mV) at "
                          f"batch index {tuple(idx)}")


def validate_inputs(state: torch.Tensor, params: TP06Params, dt: float) -> None:
    """Check shapes and dt before a run (:func:`step` only checks the cheap things).

    Raises
    ------
    InputError
        Naming the wrong shape or value.
    """
    if state.dim() < 1 or state.shape[0] != N_STATES:
        raise InputError(f"TP06 state must have shape (19, *batch), got {tuple(state.shape)}")
    if not state.is_floating_point():
        raise InputError(f"TP06 state must be floating point, got {state.dtype}")
    if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise InputError(f"time step dt must be a positive number of ms, got {dt!r}")
    batch = tuple(state.shape[1:])
    try:
        shape = torch.broadcast_shapes(batch, params.broadcast_shape())
    except RuntimeError as exc:
        raise InputError(f"TP06 parameters of shape {tuple(params.broadcast_shape())} do not "
                         f"broadcast to the state's batch shape {batch}") from exc
    if tuple(shape) != batch:
        raise InputError(f"TP06 parameters of shape {tuple(params.broadcast_shape())} would "
                         f"enlarge the state's batch shape {batch}")
