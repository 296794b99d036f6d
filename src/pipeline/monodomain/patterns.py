"""Activation patterns from the literature, placed by the anatomy's coordinates.

Durrer et al. 1970 ("Total excitation of the isolated human heart", Circulation 41:899)
found three LV endocardial areas excited first, 0-5 ms after the start of LV activity:
high on the anterior paraseptal wall below the mitral valve, the centre of the left
septal surface, and the posterior paraseptal wall about one third of the way from apex
to base; the RV starts 5-10 ms later near the insertion of the anterior papillary
muscle. The right bundle branch reaches the RV free wall through the moderator band
(septomarginal trabecula), which crosses the cavity from the septum to the base of the
anterior papillary muscle (Gray's Anatomy); the RV site sits there, at mid-cavity height
(apicobasal 0.5) on the anterolateral free wall. (At 0.35, in the apical third, the fast
layer reached the lateral RV wall under V1 some 10 ms later, when the LV forces were
over, and V1 read R > S; docs/fidelity-log.md, "Session 4 settings", *Textbook criteria*.) A fast subendocardial layer stands in for the Purkinje network (conductivity
``sigma_fast_endo``, isotropic) over the lower part of both endocardia, so that a normal
beat activates the ventricles in about 60-100 ms, the posterobasal LV and the basal RV
last.

Patterns (:data:`PATTERNS`):

``normal``
    the three LV sites and the RV site; both fast layers conduct.
``lbbb``
    left bundle-branch block: the RV site only; the LV fast layer conducts like
    myocardium, so the LV is reached through the septum.
``rbbb``
    right bundle-branch block: the three LV sites; the RV fast layer is off.
``rv_apex``
    single-site pacing at the RV apical endocardium; both fast layers off (paced beats
    spread through the working myocardium).
``lv_lateral``
    single-site pacing at the mid LV lateral epicardium (the usual LV lead position);
    both fast layers off.

Variations drawn from a per-simulation integer seed: each site moves to a random
candidate voxel within ``site_jitter_mm`` of its nominal position, and its onset is
delayed by a uniform draw from ``site_delay_ms`` on top of the literature delay; times
are then shifted so that the first stimulus is at t = 0 (DESIGN.md section 2). Every
choice is stored in :attr:`Pattern.record`.

Coordinates (interface of pipeline.anatomy): ``transmural`` 0 endo -> 1 epi,
``apicobasal`` 0 apex -> 1 base, ``rotational`` (-pi, pi] about the LV long axis with 0
towards the septum, +pi/2 anterior, -pi/2 posterior (inferior), +-pi LV lateral wall;
``ventricle`` -1 LV -> +1 RV; ``region`` 1 LV free wall, 2 RV free wall, 3 septum.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.params import PATTERNS
from pipeline.monodomain.stimulus import Stimulus

log = logging.getLogger(__name__)

FAST_REGIONS: tuple[str, ...] = ("fast_lv", "fast_rv")


@dataclass(frozen=True)
class Site:
    """A nominal activation site in anatomical coordinates.

    ``surface`` is ``lv_endo``, ``rv_endo`` or ``epi``; ``regions`` the allowed region
    labels; ``delay_ms`` the literature delay before the random offset.
    """

    name: str
    surface: str
    regions: tuple[int, ...]
    apicobasal: float
    rotational: float
    delay_ms: float


#: The sites of each pattern (Durrer et al. 1970 for the normal beat).
SITES: dict[str, tuple[Site, ...]] = {
    "lv": (
        Site("lv_anterior_paraseptal", "lv_endo", (1, 3), 0.70, math.pi / 3, 0.0),
        Site("lv_midseptal", "lv_endo", (3,), 0.50, 0.0, 0.0),
        Site("lv_posterior_paraseptal", "lv_endo", (1, 3), 0.33, -math.pi / 3, 0.0),
    ),
    "rv": (Site("rv_anterior_papillary", "rv_endo", (2,), 0.50, math.pi / 6, 5.0),),
    "rv_apex": (Site("rv_apex", "rv_endo", (2, 3), 0.08, 0.0, 0.0),),
    "lv_lateral": (Site("lv_lateral", "epi", (1,), 0.50, math.pi, 0.0),),
}
PATTERN_SITES: dict[str, tuple[str, ...]] = {
    "normal": ("lv", "rv"), "lbbb": ("rv",), "rbbb": ("lv",),
    "rv_apex": ("rv_apex",), "lv_lateral": ("lv_lateral",),
}
PATTERN_FAST: dict[str, tuple[bool, bool]] = {
    "normal": (True, True), "lbbb": (False, True), "rbbb": (True, False),
    "rv_apex": (False, False), "lv_lateral": (False, False),
}


@dataclass(frozen=True)
class TissueCoords:
    """Per-tissue-voxel anatomy fields (all (n,), C order of the mask) and positions (mm)."""

    xyz: np.ndarray
    transmural: np.ndarray
    apicobasal: np.ndarray
    rotational: np.ndarray
    ventricle: np.ndarray
    region: np.ndarray
    boundary: np.ndarray
    spacing: float

    @classmethod
    def from_anatomy(cls, anatomy: Any) -> TissueCoords:
        """From a :class:`pipeline.anatomy.io.Anatomy` (or any object with its fields)."""
        mask = np.asarray(anatomy.mask, dtype=bool)
        ijk = np.argwhere(mask)
        padded = np.pad(mask, 1)
        boundary = np.zeros(len(ijk), dtype=bool)
        for d in range(3):
            for s in (-1, 1):
                nb = ijk + 1
                nb[:, d] += s
                boundary |= ~padded[tuple(nb.T)]
        spacing = np.asarray(anatomy.spacing, dtype=np.float64)
        return cls(xyz=np.asarray(anatomy.origin) + ijk * spacing,
                   transmural=np.asarray(anatomy.transmural)[mask].astype(np.float64),
                   apicobasal=np.asarray(anatomy.apicobasal)[mask].astype(np.float64),
                   rotational=np.asarray(anatomy.rotational)[mask].astype(np.float64),
                   ventricle=np.asarray(anatomy.ventricle)[mask].astype(np.float64),
                   region=np.asarray(anatomy.region)[mask].astype(np.int64),
                   boundary=boundary, spacing=float(spacing.max()))

    def surface(self, name: str) -> np.ndarray:
        """bool (n,): voxels of an endocardial (``lv_endo``, ``rv_endo``) or the ``epi`` surface."""
        if name == "epi":
            return self.boundary & (self.transmural > 0.7)
        endo = self.boundary & (self.transmural < 0.3)
        lv = (self.region == 1) | ((self.region == 3) & (self.ventricle < 0))
        if name == "lv_endo":
            return endo & lv
        if name == "rv_endo":
            return endo & ~lv
        raise ValueError(f"unknown surface {name!r}")


def endocardial_faces(coords: TissueCoords, endo: np.ndarray) -> np.ndarray:
    """Centres (m, 3) mm of the faces between the ``endo`` voxels (bool (n,)) and voxels
    outside the tissue: the endocardium as the grid draws it, half a voxel outside the
    centres of its surface voxels."""
    h = coords.spacing
    ijk = np.rint((coords.xyz - coords.xyz.min(axis=0)) / h).astype(np.int64) + 1
    tissue = np.zeros(tuple(ijk.max(axis=0) + 2), dtype=bool)
    tissue[tuple(ijk.T)] = True
    centres = []
    for axis in range(3):
        for side in (-1, 1):
            nb = ijk[endo].copy()
            nb[:, axis] += side
            face = coords.xyz[endo][~tissue[tuple(nb.T)]].copy()
            face[:, axis] += 0.5 * side * h
            centres.append(face)
    return np.concatenate(centres)


def fast_layers(coords: TissueCoords, *, depth_mm: float = 1.0,
                max_apicobasal: float = 0.85,
                septal_max_apicobasal: float = 0.95,
                face_connected: bool = False) -> dict[str, np.ndarray]:
    """The fast subendocardial layers ``fast_lv`` and ``fast_rv`` (bool (n,) each).

    A voxel is in the layer if its centre lies within ``depth_mm`` of the endocardium as
    the grid draws it, the faces between endocardial surface voxels and the cavity
    (:func:`endocardial_faces`; the surface voxels always are), on the endocardial half of
    the wall, below ``max_apicobasal`` on the free walls and below
    ``septal_max_apicobasal`` on the septum (``region`` 3, both faces). This is the
    midpoint rule for the tissue within ``depth_mm`` of the wall: on a wall along a grid
    plane the layer is ``depth_mm`` thick at every voxel size that divides it (1 mm: 4
    voxels at 0.25 mm, 2 at 0.5 mm, 1 at 1 mm), and one voxel where the voxel is up to
    twice the depth (2 mm). Measured on the LLNL heart (1 mm): 16.4 / 14.9 / 12.7 cm^3 at
    0.5 / 0.75 / 1 mm, the rest of the spread the staircase of oblique walls.

    Until 2026-12-03 the depth was measured from the centres of the surface voxels, half a
    voxel inside the wall, so a "1 mm" layer was 1.5 mm thick at 0.5 mm and 2 mm at 1 mm
    (19.9 and 25.9 cm^3 on the LLNL heart): the 1 mm eikonal of the demo ran 2.9 ms early
    on average against the 0.5 mm monodomain (docs/fidelity-log.md, "Session 22").

    The septum's reach is higher because the bundle branches run down both septal faces
    from the septal crest, and the regions a normal beat reaches last are the posterobasal
    LV free wall and the basal RV (Durrer et al. 1970; Wyndham et al., Circulation
    59:161, 1979, latest epicardial activation basal in all 11 patients; Ramanathan et al.
    2006), not the basal septum. Left to fill from below, the basal septum of the
    parametric shells was the last tissue to activate and turned their frontal axis
    superior (-63 to -91 deg with the myocardial ECG source; docs/fidelity-log.md,
    "Session 15").

    ``face_connected`` (for the diffusion operator, which couples face neighbours only):
    where two layer voxels touch only at an edge or a corner, as along the staircase of an
    oblique wall, the layer gets the face neighbour that joins them
    (:func:`face_connect`). Without it the LLNL heart's layers are 146 / 180 (LV / RV)
    face-connected pieces at 2 mm and 470 / 627 at 1 mm (one each at 0.5 mm), and the
    front in the layer must cross slow myocardium at every step of the staircase: the
    2 mm monodomain's LBBB then activates the 75 points 15 ms late on average against the
    0.5 mm monodomain, 4.7 ms with the joins (docs/fidelity-log.md, "Session 24"). The
    eikonal needs no joins: its stencil spans the 26 neighbours.

    Raises
    ------
    InputError
        The voxel is more than twice ``depth_mm``: the layer would be one voxel, much
        thicker than asked (a resolution too coarse for the fast layer).
    """
    from scipy.spatial import cKDTree

    if not depth_mm > 0:
        raise InputError(f"simulate.fast_endo_depth_mm = {depth_mm}: expected a depth > 0 mm")
    if coords.spacing > 2.0 * depth_mm + 1e-9:
        raise InputError(f"simulate.fast_endo_depth_mm = {depth_mm:g} mm is less than half the "
                         f"voxel size {coords.spacing:g} mm: the fast layer would be one voxel "
                         f"({coords.spacing:g} mm) thick; use a finer grid or a depth >= "
                         f"{coords.spacing / 2:g} mm")
    endo = coords.surface("lv_endo") | coords.surface("rv_endo")
    if not endo.any():
        raise InputError("the anatomy has no endocardial surface voxel for the fast layer")
    dist, _ = cKDTree(endocardial_faces(coords, endo)).query(
        coords.xyz, distance_upper_bound=depth_mm + 1e-6, workers=-1)
    inner = ((dist <= depth_mm + 1e-6) | endo) & (coords.transmural < 0.5)
    reach = np.where(coords.region == 3, septal_max_apicobasal, max_apicobasal)
    inner &= coords.apicobasal < reach
    lv = (coords.region == 1) | ((coords.region == 3) & (coords.ventricle < 0))
    layers = {"fast_lv": inner & lv, "fast_rv": inner & ~lv}
    if not face_connected:
        return layers
    allowed = (coords.transmural < 0.5) & (coords.apicobasal < reach)
    return _face_connected_layers(coords, layers, allowed, lv, endo, depth_mm)


def _face_connected_layers(coords: TissueCoords, layers: dict[str, np.ndarray],
                           allowed: np.ndarray, lv: np.ndarray,
                           endo: np.ndarray, depth_mm: float,
                           max_passes: int = 4) -> dict[str, np.ndarray]:
    """:func:`fast_layers`' layers with :func:`face_connect`'s joins, drawn on the grid.

    Joins come from ``allowed`` tissue (the endocardial half, below the reach) of the same
    ventricle (``lv``: bool (n,)), nearest the endocardium (faces of ``endo``) first.
    A join is a face neighbour of the layer as it stands after the previous pass, so no
    candidate lies further than ``depth_mm + max_passes`` voxels from the endocardium; the
    distances are searched that far only (the same joins; 7 M voxels at 0.25 mm: an
    unbounded search took 50 s).
    """
    from scipy.spatial import cKDTree

    bound = depth_mm + (max_passes + 1) * np.sqrt(3.0) * coords.spacing
    dist, _ = cKDTree(endocardial_faces(coords, endo)).query(
        coords.xyz, distance_upper_bound=bound, workers=-1)
    ijk = np.rint((coords.xyz - coords.xyz.min(axis=0)) / coords.spacing).astype(np.int64)
    shape = tuple(ijk.max(axis=0) + 1)
    at = tuple(ijk.T)
    dist_grid = np.full(shape, np.inf, dtype=np.float32)
    dist_grid[at] = dist
    out = {}
    for name, side in (("fast_lv", lv), ("fast_rv", ~lv)):
        grid, ok = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        grid[at], ok[at] = layers[name], allowed & side
        out[name] = face_connect(grid, ok, dist_grid, max_passes=max_passes)[at]
    return out


def _shifted(a: np.ndarray, offset: tuple[int, ...], fill: Any = False) -> np.ndarray:
    """``b[p] = a[p + offset]`` (``fill`` where ``p + offset`` leaves the array)."""
    out = np.full_like(a, fill)
    src = tuple(slice(max(o, 0), n + min(o, 0)) for n, o in zip(a.shape, offset))
    dst = tuple(slice(max(-o, 0), n + min(-o, 0)) for n, o in zip(a.shape, offset))
    out[dst] = a[src]
    return out


def face_connect(layer: np.ndarray, allowed: np.ndarray, dist: np.ndarray, *,
                 max_passes: int = 4) -> np.ndarray:
    """Join the face-connected pieces of a layer where they touch at an edge or a corner.

    For every pair of layer voxels p, p + o (o one of the 20 edge and corner offsets, each
    pair taken once) that lie in different face-connected pieces, the face neighbour of p
    towards p + o with the smallest ``dist`` among the ``allowed`` ones joins the layer;
    the pieces are counted again after each pass, and a pair at a corner takes a second
    join on the next pass.
    Pieces that do not touch (a gap of a voxel or more) stay apart.

    Parameters
    ----------
    layer, allowed
        bool (nx, ny, nz): the layer, and the voxels that may join it.
    dist
        (nx, ny, nz): the preference (mm from the endocardium); smaller joins first.
    max_passes
        Passes over the offsets (two join every corner).

    Returns
    -------
    numpy.ndarray
        bool (nx, ny, nz): the layer and its joins.
    """
    import itertools

    from scipy import ndimage

    layer = np.asarray(layer, dtype=bool).copy()
    # each pair once (the offsets after (0, 0, 0)), its joins from its first voxel
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=3)
               if sum(map(abs, o)) >= 2 and o > (0, 0, 0)]
    for _ in range(max_passes):
        piece, n_pieces = ndimage.label(layer)
        if n_pieces <= 1:
            break
        join = np.zeros_like(layer)
        for o in offsets:
            other = _shifted(piece, o, 0)
            need = layer & (other > 0) & (other != piece)
            if not need.any():
                continue
            best = np.full(layer.shape, np.inf)
            choice = np.full(layer.shape, -1)
            for d in (d for d in range(3) if o[d]):
                step = tuple(o[i] if i == d else 0 for i in range(3))
                far = _shifted(dist, step, np.inf)
                cand = _shifted(allowed, step) & (far < best)
                best[cand] = far[cand]
                choice[cand] = d
            for d in (d for d in range(3) if o[d]):
                step = tuple(-o[i] if i == d else 0 for i in range(3))
                join |= _shifted(need & (choice == d), step)
        join &= ~layer
        if not join.any():
            break
        layer |= join
    return layer


@dataclass(frozen=True)
class Pattern:
    """One simulation's activation pattern: stimuli, fast layers used, and its record."""

    name: str
    stimuli: tuple[Stimulus, ...]
    fast_enabled: tuple[bool, bool]
    record: dict = field(compare=False)


def _angle_diff(a: np.ndarray, b: float) -> np.ndarray:
    return np.angle(np.exp(1j * (a - b)))


def _place(site: Site, coords: TissueCoords, rng: np.random.Generator,
           jitter_mm: float) -> tuple[int, int]:
    """(nominal voxel, jittered voxel) of a site."""
    cand = coords.surface(site.surface) & np.isin(coords.region, site.regions)
    if not cand.any():
        raise InputError(f"site {site.name}: no voxel on surface {site.surface} in regions "
                         f"{site.regions}; is the anatomy biventricular with coordinates?")
    idx = np.flatnonzero(cand)
    da = (coords.apicobasal[idx] - site.apicobasal) / 0.1
    dr = _angle_diff(coords.rotational[idx], site.rotational) / (math.pi / 6)
    nominal = int(idx[np.argmin(da * da + dr * dr)])
    if jitter_mm <= 0:
        return nominal, nominal
    dist = np.linalg.norm(coords.xyz[idx] - coords.xyz[nominal], axis=1)
    near = idx[dist <= jitter_mm]
    return nominal, int(rng.choice(near))


def make_pattern(name: str, coords: TissueCoords, seed: int, *, site_jitter_mm: float = 3.0,
                 site_delay_ms: tuple[float, float] = (0.0, 10.0), site_radius_mm: float = 2.5,
                 amplitude: float = -60.0, duration_ms: float = 2.0) -> Pattern:
    """Draw one simulation's pattern.

    Parameters
    ----------
    name
        One of :data:`PATTERNS`.
    coords
        The anatomy's tissue coordinates.
    seed
        Per-simulation integer seed; the same seed gives the same pattern.
    site_jitter_mm
        Largest displacement of a site from its nominal voxel (mm).
    site_delay_ms
        (low, high) range of the uniform random onset offset per site (ms).
    site_radius_mm
        Radius of the stimulated ball around a site (mm; at least 1.5 voxels).
    amplitude, duration_ms
        Stimulus current (pA/pF, negative) and pulse length (ms).

    Raises
    ------
    InputError
        Unknown pattern (naming the known ones) or an anatomy without the site's surface.
    """
    if name not in PATTERNS:
        raise InputError(f"unknown activation pattern {name!r}; expected one of {list(PATTERNS)}")
    lo, hi = (float(x) for x in site_delay_ms)
    if hi < lo or lo < 0:
        raise InputError(f"site_delay_ms must be (low, high) with 0 <= low <= high, got "
                         f"{site_delay_ms}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), PATTERNS.index(name)]))
    radius = max(site_radius_mm, 1.5 * coords.spacing)
    sites = [s for group in PATTERN_SITES[name] for s in SITES[group]]
    placed = []
    for site in sites:
        nominal, voxel = _place(site, coords, rng, site_jitter_mm)
        offset = float(rng.uniform(lo, hi))
        placed.append((site, nominal, voxel, site.delay_ms + offset))
    t0 = min(p[3] for p in placed)
    stimuli, records = [], []
    for site, nominal, voxel, onset in placed:
        ball = np.flatnonzero(np.linalg.norm(coords.xyz - coords.xyz[voxel], axis=1) <= radius)
        stimuli.append(Stimulus(voxels=ball, start_ms=onset - t0, duration_ms=duration_ms,
                                amplitude=amplitude, name=site.name))
        records.append({"site": site.name, "voxel": voxel,
                        "xyz_mm": [round(float(x), 3) for x in coords.xyz[voxel]],
                        "jitter_mm": round(float(np.linalg.norm(coords.xyz[voxel]
                                                                - coords.xyz[nominal])), 3),
                        "onset_ms": round(onset - t0, 4)})
    fast = PATTERN_FAST[name]
    record = {"pattern": name, "seed": int(seed), "sites": records,
              "fast_lv": fast[0], "fast_rv": fast[1], "site_jitter_mm": site_jitter_mm,
              "site_delay_ms": [lo, hi], "site_radius_mm": radius,
              "stim_amplitude_pA_per_pF": amplitude, "stim_duration_ms": duration_ms}
    return Pattern(name=name, stimuli=tuple(stimuli), fast_enabled=fast, record=record)
