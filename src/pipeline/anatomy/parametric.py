"""Parametric biventricular hearts: truncated ellipsoidal shells joined at the septum.

Frame: z is the long axis with the flat base at z = 0 and the apex at negative z; the RV
lies toward +x, so +y is anterior (rotational coordinate +pi/2). All lengths in mm.

Geometry (every ellipsoid is centred at height z = -z_c, so the base, z_c above the
equator, is slightly narrower than the widest section)::

    LV cavity   = E(0; r_lv, r_lv, L_lv)
    LV epi      = E(0; r_lv + t_lv, r_lv + t_lv, L_lv + t_apex)
    RV cavity   = E(c_rv; R_x, R_y, L_rv) minus LV epi      (a crescent round the septum)
    RV epi      = E(c_rv; R_x + t_rv, R_y + t_rv, L_rv + t_rv)
    tissue      = (LV epi | RV epi) - LV cavity - RV cavity, below the base

so the septum is the LV wall where the RV cavity embraces it. R_y is set so that the RV
cavity meets the LV epicardium at the drawn insertion angle on the equator.

Parameter ranges (uniform), from adult echocardiographic norms (Lang et al. 2015, JASE
28:1-39: LV end-diastolic diameter 42-58 mm, LV wall 6-12 mm, RV basal diameter 25-41 mm,
RV wall under 5 mm) and a LV cavity length of 70-95 mm from base to apex; shapes whose
myocardial volume falls outside 100-250 cm^3 are drawn again.

The RV cavity width (septal surface to free-wall endocardium, at the equator, where the
crescent is widest and which lies 0-20 % of the LV length below the base) is the RV basal
diameter's 25-41 mm. It was 12-20 mm until 2026-12-02: with it the RV cavity held 27-45 mL
against an LV's 88-127 mL (the first six hearts of seed 20221); now 53-83 mL, still below
the RV/LV end-diastolic volume ratio of about 1 in adults, as the shells have no outflow
tract. The narrow RV shortened the QRS: 76 and 78 ms in hearts 1 and 2 (normal, R-E+ at
2 mm), 111-118 ms in RBBB (hearts 0-2); with the measured width 82 and 85 ms, and 135-144 ms
(docs/fidelity-log.md, "Session 12").
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.anatomy.grid import (BASE, EPI, LV_ENDO, RV_ENDO, Grid, boundary_faces, face_points,
                                   largest_component)
from pipeline.anatomy.voxelise import VoxelHeart

log = logging.getLogger(__name__)

#: Uniform ranges of the drawn parameters (mm, deg or fraction).
RANGES: dict[str, tuple[float, float]] = {
    "r_lv": (21.0, 27.0),          # LV cavity radius at the equator
    "t_lv": (7.0, 11.0),           # LV free wall and septum thickness
    "L_lv": (62.0, 80.0),          # LV cavity long semi-axis
    "t_apex": (4.0, 7.0),          # wall thickness at the apex
    "base_above_equator": (0.0, 0.2),  # z_c / L_lv
    "t_rv": (3.0, 5.0),            # RV free wall thickness
    "rv_width": (25.0, 41.0),      # RV cavity width, septum to free wall (RV basal diameter)
    "rv_centre": (0.45, 0.75),     # RV ellipsoid centre c_rv / LV epicardial radius
    "insertion_deg": (50.0, 70.0),  # RV insertion angle from the septal direction
    "rv_length": (0.72, 0.88),     # L_rv / L_lv
}
VOLUME_RANGE_CM3 = (100.0, 250.0)


@dataclass(frozen=True)
class HeartShape:
    """Shape parameters of one parametric heart (mm, degrees); see the module docstring."""

    r_lv: float
    t_lv: float
    L_lv: float
    t_apex: float
    base_above_equator: float
    t_rv: float
    rv_width: float
    rv_centre: float
    insertion_deg: float
    rv_length: float

    # ---- derived ellipsoids: (centre (3,), semi-axes (3,))
    @property
    def z_c(self) -> float:
        return self.base_above_equator * self.L_lv

    @property
    def r_epi(self) -> float:
        return self.r_lv + self.t_lv

    def ellipsoids(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The four ellipsoids (centre, semi-axes) in mm."""
        c_lv = np.array([0.0, 0.0, -self.z_c])
        c_rv = np.array([self.rv_centre * self.r_epi, 0.0, -self.z_c])
        r_x = self.r_epi + self.rv_width - c_rv[0]
        phi = np.radians(self.insertion_deg)
        u = (self.r_epi * np.cos(phi) - c_rv[0]) / r_x
        r_y = self.r_epi * np.sin(phi) / np.sqrt(1.0 - u * u) if abs(u) < 1 else np.nan
        l_rv = self.rv_length * self.L_lv
        return {
            "lv_endo": (c_lv, np.array([self.r_lv, self.r_lv, self.L_lv])),
            "lv_epi": (c_lv, np.array([self.r_epi, self.r_epi, self.L_lv + self.t_apex])),
            "rv_endo": (c_rv, np.array([r_x, r_y, l_rv])),
            "rv_epi": (c_rv, np.array([r_x + self.t_rv, r_y + self.t_rv, l_rv + self.t_rv])),
        }

    def valid(self) -> bool:
        """The RV ellipsoid is defined and the RV cavity does not reach round the LV."""
        e = self.ellipsoids()
        c, a = e["rv_endo"]
        return bool(np.isfinite(a).all() and c[0] - a[0] > -self.r_epi and a[1] < 2 * self.r_epi)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounding box (lo, hi) of the tissue, mm."""
        los, his = [], []
        for c, a in self.ellipsoids().values():
            los.append(c - a)
            his.append(c + a)
        lo, hi = np.min(los, axis=0), np.max(his, axis=0)
        hi[2] = 0.0
        return lo, hi

    def classify(self, xyz: np.ndarray) -> np.ndarray:
        """Code of each point (N, 3): 0 tissue, or the surface label of the space it is in
        (BASE above the base plane, LV_ENDO / RV_ENDO in a cavity, EPI outside)."""
        e = self.ellipsoids()

        def inside(key: str) -> np.ndarray:
            c, a = e[key]
            return (((xyz - c) / a) ** 2).sum(axis=-1) < 1.0

        lv_epi = inside("lv_epi")
        lv_cav = inside("lv_endo")
        rv_cav = inside("rv_endo") & ~lv_epi
        heart = lv_epi | inside("rv_epi")
        code = np.zeros(xyz.shape[:-1], dtype=np.uint8)
        code[~heart] = EPI
        code[lv_cav] = LV_ENDO
        code[rv_cav] = RV_ENDO
        code[xyz[..., 2] >= 0.0] = BASE
        return code

    def volume_mm3(self, spacing: float = 0.5) -> float:
        """Myocardial volume, mm^3, by counting points of a fine lattice."""
        lo, hi = self.bounds()
        axes = [np.arange(lo[d] + spacing / 2, hi[d], spacing) for d in range(3)]
        total = 0
        for x in axes[0]:
            yy, zz = np.meshgrid(axes[1], axes[2], indexing="ij")
            pts = np.stack([np.full_like(yy, x), yy, zz], axis=-1)
            total += int((self.classify(pts) == 0).sum())
        return total * spacing ** 3


def draw_shape(rng: np.random.Generator) -> HeartShape:
    """Draw a valid shape within :data:`RANGES` and :data:`VOLUME_RANGE_CM3`."""
    for _ in range(1000):
        shape = HeartShape(**{k: float(rng.uniform(*r)) for k, r in RANGES.items()})
        if not shape.valid():
            continue
        volume = shape.volume_mm3(spacing=1.5) / 1000
        if VOLUME_RANGE_CM3[0] <= volume <= VOLUME_RANGE_CM3[1]:
            return shape
    raise RuntimeError("could not draw a parametric heart within the volume range")


def shape_for(seed: int, index: int) -> HeartShape:
    """The shape of parametric heart ``index`` under the master ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    shape = draw_shape(rng)
    log.info("parametric heart %d (seed %d): %s", index, seed,
             {k: round(v, 2) for k, v in asdict(shape).items()})
    return shape


def voxelise_shape(shape: HeartShape, spacing: float, name: str) -> VoxelHeart:
    """Voxelise a parametric heart; the base plane runs along voxel faces."""
    lo, hi = shape.bounds()
    grid = Grid.covering(lo, hi, spacing)
    origin = grid.origin.copy()
    origin[2] = -0.5 * spacing - (grid.shape[2] - 3) * spacing  # two empty layers above z=0
    grid = Grid(origin=origin, spacing=grid.spacing, shape=grid.shape)
    axes = [grid.origin[d] + spacing * np.arange(grid.shape[d]) for d in range(3)]
    xyz = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    mask = shape.classify(xyz) == 0
    del xyz
    mask = largest_component(mask)
    voxel, direction = boundary_faces(mask)
    label = shape.classify(face_points(grid, voxel, direction, where=1.0))
    label[label == 0] = EPI  # a dropped fragment's voxel: outside the kept tissue
    heart = VoxelHeart(grid, mask, voxel, direction, label.astype(np.uint8),
                       np.array([0.0, 0.0, 1.0]), 0.0, name, shape.volume_mm3())
    log.info("voxelised %s at %.2f mm: grid %s, %d tissue voxels, %.2f cm^3 (shape %.2f cm^3)",
             name, spacing, grid.shape, int(mask.sum()), heart.volume_mm3 / 1000,
             heart.source_volume_mm3 / 1000)
    return heart
