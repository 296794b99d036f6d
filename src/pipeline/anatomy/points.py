"""The 75 intracardiac recording points of DESIGN.md section 4.

LV endocardial points sit at the centres of the AHA-17 segments (Cerqueira et al.,
Circulation 105:539-542, 2002). Heights run along the LV long axis from the LV
endocardial apex (0) to the base plane (1); the basal, mid and apical thirds have their
centres at 5/6, 1/2 and 1/6. Angles are the rotational coordinate about the LV long axis.
At each level the RV insertion points are the extreme angles (1st and 99th percentiles)
of the RV endocardium in that third; the septum (segments 2-3, 8-9) is the arc between
them, split in two; the free wall (from the anterior insertion round the lateral wall to
the inferior insertion) is split into four (1 anterior, 6 anterolateral, 5 inferolateral,
4 inferior). The apical ring has four 90-degree segments centred on the mid-level septal
direction (14 septal, 13 anterior, 16 lateral, 15 inferior); 17 is the endocardial apex.

RV free-wall points divide the RV free wall's angular extent at the RV's own basal, mid
and apical thirds (depth below the base plane, from the deepest RV endocardium to the
base: the RV lies far from the LV axis, where a tilted axis would skew heights): RV01/RV06 anterior, RV02/RV07 lateral, RV03/RV08
inferior (sixths 1, 3, 5), RV11 anterior and RV12 inferior (quarters 1, 3). RV septal
points are the RV septal endocardial voxels nearest to the LV points they face.
Each point is the voxel of the right surface and region with the smallest arc-length
distance (mm) to its target. Epicardial points are the nearest epicardial voxels of the
same region; a mid-wall point is the interior voxel near the halfway point (within 1.5
voxels or a fifth of the pair's distance) whose transmural coordinate (septal points: the
ventricle coordinate) is closest to the mean of the pair's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from pipeline.anatomy.coords import LV_FREE, RV_FREE, SEPTUM, Coordinates
from pipeline.anatomy.grid import EPI, LV_ENDO, RV_ENDO
from pipeline.anatomy.laplace import TissueGraph
from pipeline.anatomy.voxelise import VoxelHeart

log = logging.getLogger(__name__)

AHA_NAMES = [f"AHA{i:02d}" for i in range(1, 18)]
RV_NAMES = [f"RV{i:02d}" for i in range(1, 14)]
EPI_OF = ["AHA01", "AHA04", "AHA05", "AHA06", "AHA07", "AHA10", "AHA11", "AHA12", "AHA13",
          "AHA15", "AHA16", "AHA17", "RV01", "RV02", "RV03", "RV06", "RV07", "RV08", "RV11",
          "RV12"]
SEPTAL_PAIRS = [("AHA02", "RV05"), ("AHA03", "RV04"), ("AHA08", "RV10"), ("AHA09", "RV09"),
                ("AHA14", "RV13")]
#: The 75 names in their fixed order (DESIGN.md section 4).
POINT_NAMES: list[str] = (AHA_NAMES + RV_NAMES + [f"EPI_{n}" for n in EPI_OF]
                          + [f"MID_{n}" for n in EPI_OF]
                          + [f"SEPTM_{a}_{r}" for a, r in SEPTAL_PAIRS])
SEPTAL_AHA = {2, 3, 8, 9, 14}
SEPTAL_RV = {"RV04": "AHA03", "RV05": "AHA02", "RV09": "AHA09", "RV10": "AHA08",
             "RV13": "AHA14"}
LEVEL_HEIGHT = {"basal": 5 / 6, "mid": 1 / 2, "apical": 1 / 6}


@dataclass(frozen=True)
class Points:
    """Recording points: names (75,), tissue numbers (75,), voxel indices (75, 3), xyz mm."""

    names: list[str]
    tissue: np.ndarray
    ijk: np.ndarray
    xyz: np.ndarray


def _wrap(a: np.ndarray | float) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def expected_region(name: str) -> int:
    """Region code a point must lie in (1 LV free wall, 2 RV free wall, 3 septum)."""
    base = name.split("_")[-1] if name.startswith(("EPI_", "MID_")) else name
    if name.startswith("SEPTM_"):
        return SEPTUM
    if base.startswith("AHA"):
        return SEPTUM if int(base[3:]) in SEPTAL_AHA else LV_FREE
    return SEPTUM if base in SEPTAL_RV else RV_FREE


def insertion_angles(theta: np.ndarray) -> tuple[float, float]:
    """Inferior and anterior RV insertion angles (rad) from RV endocardial angles."""
    return float(np.percentile(theta, 1)), float(np.percentile(theta, 99))


def aha_targets(ins: dict[str, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """Segment -> (height fraction, angle rad) for segments 1-16, from insertion angles."""
    targets: dict[int, tuple[float, float]] = {}
    for level, first in (("basal", 1), ("mid", 7)):
        lo, hi = ins[level]
        w_s = hi - lo
        w_f = 2 * np.pi - w_s
        h = LEVEL_HEIGHT[level]
        targets[first + 1] = (h, lo + 0.75 * w_s)  # anteroseptal
        targets[first + 2] = (h, lo + 0.25 * w_s)  # inferoseptal
        targets[first + 0] = (h, hi + w_f / 8)  # anterior
        targets[first + 5] = (h, hi + 3 * w_f / 8)  # anterolateral
        targets[first + 4] = (h, hi + 5 * w_f / 8)  # inferolateral
        targets[first + 3] = (h, hi + 7 * w_f / 8)  # inferior
    centre = 0.5 * sum(ins["mid"])
    h = LEVEL_HEIGHT["apical"]
    for seg, off in ((13, np.pi / 2), (14, 0.0), (15, -np.pi / 2), (16, np.pi)):
        targets[seg] = (h, centre + off)
    return {k: (v[0], float(_wrap(v[1]))) for k, v in targets.items()}


class _Placer:
    """The shared geometry of one heart's point placement (see :func:`place_points`)."""

    def __init__(self, heart: VoxelHeart, graph: TissueGraph, coords: Coordinates) -> None:
        frame = coords.frame
        self.heart, self.coords, self.frame = heart, coords, frame
        self.xyz = heart.grid.flat_centres(np.flatnonzero(heart.mask))
        face_tissue = graph.index.ravel()[heart.face_voxel]
        self.surface = {k: np.unique(face_tissue[heart.face_label == k])
                        for k in (LV_ENDO, RV_ENDO, EPI)}
        self.interior = np.setdiff1d(np.arange(graph.n), np.unique(face_tissue))
        self.axial = (self.xyz - frame.lv_apex) @ frame.long_axis
        self.length = (frame.base_offset - frame.lv_apex @ frame.base_normal) / (
            frame.long_axis @ frame.base_normal)
        self.theta = coords.rotational
        self.rho = frame.radius(self.xyz)
        self.region = coords.region
        self.chosen: dict[str, int] = {}

    def best(self, cands: np.ndarray, hfrac: np.ndarray, scale: float, h_t: float, t_t: float,
             name: str) -> int:
        """Candidate nearest (arc length, mm) to height fraction h_t and angle t_t."""
        want = cands[self.region[cands] == expected_region(name)]
        pool = want if want.size else cands
        cost = (scale * (hfrac[pool] - h_t)) ** 2 + \
            (self.rho[pool] * _wrap(self.theta[pool] - t_t)) ** 2
        if want.size == 0:
            log.warning("point %s: no candidate in region %d", name, expected_region(name))
        return int(pool[np.argmin(cost)])

    def lv_endocardium(self) -> None:
        """AHA 1-17: insertion angles per level from the RV endocardium."""
        lv, rv, theta = self.surface[LV_ENDO], self.surface[RV_ENDO], self.theta
        hn = self.axial / self.length
        ins = {}
        for level, h in LEVEL_HEIGHT.items():
            sl = rv[np.abs(hn[rv] - h) <= 1 / 6]
            ins[level] = insertion_angles(theta[sl]) if sl.size >= 10 else None
        if ins["mid"] is None:
            ins["mid"] = insertion_angles(theta[rv])
        ins["basal"] = ins["basal"] or ins["mid"]
        log.info("RV insertion angles (inferior, anterior) deg: basal %s, mid %s",
                 np.round(np.degrees(ins["basal"]), 1), np.round(np.degrees(ins["mid"]), 1))
        for seg, (h_t, t_t) in aha_targets(ins).items():
            self.chosen[f"AHA{seg:02d}"] = self.best(lv, hn, self.length, h_t, t_t,
                                                     f"AHA{seg:02d}")
        self.chosen["AHA17"] = int(lv[np.argmin(np.linalg.norm(self.xyz[lv] - self.frame.lv_apex,
                                                               axis=1))])

    def rv_endocardium(self) -> None:
        """RV free wall by angle at the RV's own thirds, septum facing the LV."""
        rv, region, theta = self.surface[RV_ENDO], self.region, self.theta
        rv_free = rv[region[rv] == RV_FREE]
        rv_free = rv_free if rv_free.size else rv
        depth = -self.frame.height(self.xyz)  # below the base plane
        rv_len = float(depth[rv].max())
        h_rv = 1.0 - depth / rv_len
        plan = {"basal": (["RV01", "RV02", "RV03"], [1 / 6, 3 / 6, 5 / 6]),
                "mid": (["RV06", "RV07", "RV08"], [1 / 6, 3 / 6, 5 / 6]),
                "apical": (["RV11", "RV12"], [1 / 4, 3 / 4])}
        for level, (names, fracs) in plan.items():
            h = LEVEL_HEIGHT[level]
            sl = rv_free[np.abs(h_rv[rv_free] - h) <= 1 / 6]
            sl = sl if sl.size >= 5 else rv_free
            t_lo, t_hi = np.percentile(theta[sl], 2), np.percentile(theta[sl], 98)
            for name, frac in zip(names, fracs):
                self.chosen[name] = self.best(rv_free, h_rv, rv_len, h,
                                              t_hi - frac * (t_hi - t_lo), name)
        rv_sept = rv[region[rv] == SEPTUM]
        rv_sept = rv_sept if rv_sept.size else rv
        tree = cKDTree(self.xyz[rv_sept])
        for name, aha in SEPTAL_RV.items():
            self.chosen[name] = int(rv_sept[tree.query(self.xyz[self.chosen[aha]])[1]])

    def epicardium(self) -> None:
        """The epicardial point facing each endocardial one."""
        epi, xyz = self.surface[EPI], self.xyz
        for name in EPI_OF:
            pool = epi[self.region[epi] == expected_region(name)]
            pool = pool if pool.size else epi
            self.chosen[f"EPI_{name}"] = int(pool[np.argmin(np.linalg.norm(
                xyz[pool] - xyz[self.chosen[name]], axis=1))])

    def mid(self, a: int, b: int, reg: int, coord: np.ndarray) -> int:
        """Interior voxel near the halfway point whose ``coord`` is nearest the pair's mean."""
        xyz, interior = self.xyz, self.interior
        pool = interior[self.region[interior] == reg]
        pool = pool if pool.size else interior
        target = 0.5 * (xyz[a] + xyz[b])
        dist = np.linalg.norm(xyz[pool] - target, axis=1)
        near = pool[dist <= max(1.5 * self.heart.grid.spacing,
                                0.2 * np.linalg.norm(xyz[a] - xyz[b]))]
        if near.size == 0:
            return int(pool[np.argmin(dist)])
        miss = np.abs(coord[near] - 0.5 * (coord[a] + coord[b]))
        order = np.lexsort((np.linalg.norm(xyz[near] - target, axis=1), np.round(miss, 2)))
        return int(near[order[0]])

    def mid_wall(self) -> None:
        """Mid-wall points between endo- and epicardium, septal ones between LV and RV."""
        c = self.chosen
        for name in EPI_OF:
            c[f"MID_{name}"] = self.mid(c[name], c[f"EPI_{name}"], expected_region(name),
                                        self.coords.transmural)
        for a, r in SEPTAL_PAIRS:
            c[f"SEPTM_{a}_{r}"] = self.mid(c[a], c[r], SEPTUM, self.coords.ventricle)


def place_points(heart: VoxelHeart, graph: TissueGraph, coords: Coordinates) -> Points:
    """Place the 75 points (see the module docstring)."""
    placer = _Placer(heart, graph, coords)
    placer.lv_endocardium()
    placer.rv_endocardium()
    placer.epicardium()
    placer.mid_wall()
    tissue = np.array([placer.chosen[n] for n in POINT_NAMES], dtype=np.int64)
    ijk = np.stack(np.unravel_index(np.flatnonzero(heart.mask)[tissue], heart.grid.shape),
                   axis=-1)
    bad = [n for n, t in zip(POINT_NAMES, tissue) if coords.region[t] != expected_region(n)]
    if bad:
        log.warning("points outside their expected region: %s", ", ".join(bad))
    return Points(names=list(POINT_NAMES), tissue=tissue, ijk=ijk.astype(np.int64),
                  xyz=heart.grid.centres(ijk))
