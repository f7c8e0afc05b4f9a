#!/usr/bin/env python3
"""Generate the tiny synthetic MVTec-AD-style dataset that lives in ``testdata/``.

Two categories are produced, in exactly the MVTec AD folder layout::

    <out>/categories.json
    <out>/<category>/train/good/000.png ...
    <out>/<category>/test/good/000.png ...
    <out>/<category>/test/<defect>/000.png ...
    <out>/<category>/ground_truth/<defect>/000_mask.png ...

* ``fabric`` (texture, 128x128): a denim-like 3/1 twill weave with random
  phase, slight scale/orientation change, per-thread colour variation, slubs,
  uneven lighting and fine sensor noise.  Defects: ``hole``, ``stain``, ``cut``.
* ``washer`` (object, 112 high x 144 wide): a brushed metal washer with a
  printed orientation mark on a dark background, jittered by +-3 px and +-5 deg.
  Defects: ``scratch``, ``missing``, ``stain``.

Everything is computed with numpy (float64, element-wise operations, seeded
``np.random.default_rng``) so the decoded pixel content is reproducible; cv2 is
used only to write the PNGs.  Each image has its own seed derived from
(category, split, defect, index), so images do not depend on generation order.

Usage::

    python testdata/generate.py            # regenerate in place (next to this file)
    python testdata/generate.py --out DIR  # write a fresh copy somewhere else
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

SEED = 20210619
FABRIC_SS = 2  # supersampling factor for the weave (its thread edges are not analytic)
WASHER_SS = 1  # the washer uses analytic (coverage-based) anti-aliasing only

CATEGORIES = {
    "fabric": {"kind": "texture", "aligned": False},
    "washer": {"kind": "object", "aligned": True},
}
SIZES = {"fabric": (128, 128), "washer": (112, 144)}  # (height, width)
DEFECTS = {"fabric": ("hole", "stain", "cut"), "washer": ("scratch", "missing", "stain")}
N_TRAIN_GOOD = 60
N_TEST_GOOD = 12
N_PER_DEFECT = 8

_SPLIT_IDS = {"train": 0, "test": 1}


# --------------------------------------------------------------------------- helpers
def _grid(h: int, w: int, ss: int = 1):
    """Pixel-centre coordinates (in output-pixel units) on an ``ss``-times finer grid."""
    ys = (np.arange(h * ss, dtype=np.float64) + 0.5) / ss
    xs = (np.arange(w * ss, dtype=np.float64) + 0.5) / ss
    X, Y = np.meshgrid(xs, ys)
    return X, Y


def _downsample(img: np.ndarray, ss: int) -> np.ndarray:
    if ss == 1:
        return img
    h, w = img.shape[0] // ss, img.shape[1] // ss
    return img.reshape(h, ss, w, ss, *img.shape[2:]).mean(axis=(1, 3))


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _value_noise(rng, h: int, w: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth value noise in [-1, 1] on an h x w grid with the given number of cells."""
    g = rng.uniform(-1.0, 1.0, size=(cells_y + 1, cells_x + 1))
    fy = (np.arange(h) + 0.5) / h * cells_y
    fx = (np.arange(w) + 0.5) / w * cells_x
    iy = np.minimum(np.floor(fy).astype(np.int64), cells_y - 1)
    ix = np.minimum(np.floor(fx).astype(np.int64), cells_x - 1)
    ty = fy - iy
    tx = fx - ix
    ty = (ty * ty * (3.0 - 2.0 * ty))[:, None]
    tx = (tx * tx * (3.0 - 2.0 * tx))[None, :]
    g00 = g[iy][:, ix]
    g01 = g[iy][:, ix + 1]
    g10 = g[iy + 1][:, ix]
    g11 = g[iy + 1][:, ix + 1]
    return (g00 * (1.0 - tx) + g01 * tx) * (1.0 - ty) + (g10 * (1.0 - tx) + g11 * tx) * ty


def _polyline_dist(X, Y, pts, max_d: float | None = None) -> np.ndarray:
    """Euclidean distance from every (X, Y) to the polyline through ``pts``.

    With ``max_d`` only a window around the polyline is evaluated (for speed); outside it the
    result is ``max_d + 1`` (i.e. only values <= ``max_d`` are exact).  X, Y must come from
    :func:`_grid`.
    """
    pts = np.asarray(pts, dtype=np.float64)
    if max_d is not None:
        xs, ys = X[0], Y[:, 0]
        x0 = int(np.searchsorted(xs, pts[:, 0].min() - max_d - 1.0))
        x1 = int(np.searchsorted(xs, pts[:, 0].max() + max_d + 1.0, side="right"))
        y0 = int(np.searchsorted(ys, pts[:, 1].min() - max_d - 1.0))
        y1 = int(np.searchsorted(ys, pts[:, 1].max() + max_d + 1.0, side="right"))
        out = np.full(X.shape, max_d + 1.0)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = _polyline_dist(X[y0:y1, x0:x1], Y[y0:y1, x0:x1], pts)
        return out
    d2 = np.full(X.shape, np.inf)
    for (xa, ya), (xb, yb) in zip(pts[:-1], pts[1:]):
        vx, vy = xb - xa, yb - ya
        l2 = vx * vx + vy * vy
        if l2 == 0.0:
            t = 0.0
        else:
            t = np.clip(((X - xa) * vx + (Y - ya) * vy) / l2, 0.0, 1.0)
        ex = X - xa - t * vx
        ey = Y - ya - t * vy
        d2 = np.minimum(d2, ex * ex + ey * ey)
    return np.sqrt(d2)


def _bezier(p0, p1, p2, n: int = 32) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _curve_length(pts: np.ndarray) -> float:
    seg = np.diff(pts, axis=0)
    return float(np.sqrt((seg * seg).sum(axis=1)).sum())


def _random_curve(rng, start, length: float, max_bend: float = 0.5, wiggle: float = 0.4):
    """A gently curved, slightly wiggly open curve of roughly ``length`` px."""
    ang = rng.uniform(0.0, 2 * np.pi)
    d = np.array([np.cos(ang), np.sin(ang)])
    nrm = np.array([-d[1], d[0]])
    p0 = np.asarray(start, dtype=np.float64)
    p2 = p0 + d * length
    p1 = p0 + d * length * 0.5 + nrm * length * rng.uniform(-max_bend, max_bend) * 0.5
    pts = _bezier(p0, p1, p2, n=40)
    k = rng.uniform(2.0, 5.0)
    ph = rng.uniform(0.0, 2 * np.pi)
    s = np.linspace(0.0, 1.0, len(pts))[:, None]
    pts = pts + nrm[None, :] * wiggle * np.sin(2 * np.pi * k * s + ph)
    # re-scale to the requested length (the bend makes it a bit longer)
    centre = pts.mean(axis=0)
    pts = centre + (pts - centre) * (length / _curve_length(pts))
    return pts


def _blend(img, colour, alpha):
    a = alpha[..., None]
    return img * (1.0 - a) + np.asarray(colour, dtype=np.float64) * a


class Blob:
    """An irregular closed shape (perturbed, stretched circle) with a signed-distance-like field."""

    def __init__(self, rng, cx, cy, r0, amp=0.18, aspect_max=1.5, hf_amp=0.0):
        self.cx, self.cy, self.r0 = float(cx), float(cy), float(r0)
        a = rng.uniform(1.0, aspect_max)
        self.sx, self.sy = 1.0 / np.sqrt(a), np.sqrt(a)
        self.rot = rng.uniform(0.0, np.pi)
        ks = np.array([2, 3, 4, 5], dtype=np.float64)
        amps = amp * rng.uniform(0.3, 1.0, size=4) * 2.0 / ks
        phs = rng.uniform(0.0, 2 * np.pi, size=4)
        if hf_amp > 0:
            ks2 = np.arange(7, 17, dtype=np.float64)
            ks = np.concatenate([ks, ks2])
            amps = np.concatenate([amps, hf_amp * rng.uniform(0.2, 1.0, size=len(ks2)) * 7.0 / ks2])
            phs = np.concatenate([phs, rng.uniform(0.0, 2 * np.pi, size=len(ks2))])
        self.ks, self.amps, self.phs = ks, amps, phs

    def sdf(self, X, Y):
        """Approximately the signed distance in px: positive inside, negative outside."""
        dx, dy = X - self.cx, Y - self.cy
        c, s = np.cos(self.rot), np.sin(self.rot)
        u = (dx * c + dy * s) / self.sx
        v = (-dx * s + dy * c) / self.sy
        d = np.sqrt(u * u + v * v)
        phi = np.arctan2(v, u)
        r = np.ones_like(d)
        for k, a, p in zip(self.ks, self.amps, self.phs):
            r = r + a * np.cos(k * phi + p)
        return (self.r0 * r - d) * min(self.sx, self.sy)

    def boundary_point(self, phi):
        """World-space point where the ray from the centre at angle ``phi`` leaves the blob."""
        dirx, diry = np.cos(phi), np.sin(phi)
        ts = np.arange(0.0, 3.0 * self.r0, 0.1)
        sd = self.sdf(self.cx + ts * dirx, self.cy + ts * diry)
        idx = int(np.argmax(sd < 0)) if np.any(sd < 0) else len(ts) - 1
        t = ts[idx]
        return np.array([self.cx + t * dirx, self.cy + t * diry])


def _blob_radius_for_area(rng, area_px: int, lo=0.01, hi=0.06):
    frac = rng.uniform(lo, hi)
    return np.sqrt(frac * area_px / np.pi)


def _upsample2(a: np.ndarray) -> np.ndarray:
    """Bilinear x2 upsampling (pixel-centre aligned, edge-clamped), numpy only."""
    p = np.pad(a, 1, mode="edge")
    r0 = 0.75 * p[1:-1] + 0.25 * p[:-2]
    r1 = 0.75 * p[1:-1] + 0.25 * p[2:]
    rows = np.stack([r0, r1], axis=1).reshape(-1, p.shape[1])
    c0 = 0.75 * rows[:, 1:-1] + 0.25 * rows[:, :-2]
    c1 = 0.75 * rows[:, 1:-1] + 0.25 * rows[:, 2:]
    return np.stack([c0, c1], axis=2).reshape(rows.shape[0], -1)


def _finish(img_ss, rng, ss, grain_sigma):
    """Box-downsample, add fine sensor grain and quantise to uint8 RGB.

    The grain is generated at half resolution and bilinearly upsampled: it looks like fine
    sensor/film grain but compresses far better in PNG than i.i.d. per-pixel noise.
    """
    img = _downsample(img_ss, ss)
    h, w = img.shape[:2]
    grain = _upsample2(rng.normal(0.0, grain_sigma, size=((h + 1) // 2, (w + 1) // 2)))[:h, :w]
    img = img + grain[..., None]
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _mask_to_u8(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


# --------------------------------------------------------------------------- fabric
def _twill_up(i, j):
    """3/1 twill: the warp (vertical) thread is on top in 3 of every 4 cells."""
    return ((i + j) % 4) != 0


def render_fabric(rng, defect: str | None, h: int = 128, w: int = 128, ss: int = FABRIC_SS):
    X, Y = _grid(h, w, ss)
    period = rng.uniform(13.0, 14.0)  # output px per thread (>= 6.5 px at 64x64)
    theta = np.deg2rad(rng.uniform(-4.0, 4.0))
    ct, st = np.cos(theta), np.sin(theta)
    ph_u, ph_v = rng.uniform(16.0, 48.0, size=2)
    U = (X * ct + Y * st) / period + ph_u
    V = (-X * st + Y * ct) / period + ph_v
    i = np.floor(U).astype(np.int64)
    j = np.floor(V).astype(np.int64)
    fu, fv = U - i, V - j

    n_thr = 64
    warp_var = rng.normal(0.0, 0.07, size=n_thr)
    weft_var = rng.normal(0.0, 0.05, size=n_thr)
    slub_f = rng.uniform(0.04, 0.18, size=n_thr)
    slub_p = rng.uniform(0.0, 2 * np.pi, size=n_thr)
    slub_a = rng.uniform(0.0, 0.12, size=n_thr)
    im, jm = i % n_thr, j % n_thr

    up = _twill_up(i, j)
    up_prev, up_next = _twill_up(i, j - 1), _twill_up(i, j + 1)
    dip = 0.28
    warp_along = (
        1.0
        - 0.4 * (~up_prev) * np.clip(1.0 - fv / dip, 0.0, 1.0) ** 2
        - 0.4 * (~up_next) * np.clip(1.0 - (1.0 - fv) / dip, 0.0, 1.0) ** 2
    )
    weft_along = (
        1.0
        - 0.4 * _twill_up(i - 1, j) * np.clip(1.0 - fu / dip, 0.0, 1.0) ** 2
        - 0.4 * _twill_up(i + 1, j) * np.clip(1.0 - (1.0 - fu) / dip, 0.0, 1.0) ** 2
    )
    warp_across = np.sqrt(np.sin(np.pi * fu)) + 0.12 * np.cos(np.pi * fu)  # light from the left
    weft_across = np.sqrt(np.sin(np.pi * fv)) + 0.12 * np.cos(np.pi * fv)  # light from the top

    slub = 1.0 + slub_a[im] * np.sin(2 * np.pi * slub_f[im] * V + slub_p[im])
    warp_shade = (0.6 + 0.4 * warp_across * warp_along) * (1.0 + warp_var[im]) * slub
    weft_shade = (0.6 + 0.4 * weft_across * weft_along) * (1.0 + weft_var[jm])

    bright = rng.uniform(0.9, 1.1)
    tint = 1.0 + rng.uniform(-0.04, 0.04, size=3)
    warp_col = np.array([0.17, 0.27, 0.47]) * tint * bright
    weft_col = np.array([0.67, 0.66, 0.62]) * (1.0 + rng.uniform(-0.03, 0.03, size=3)) * bright

    img = np.where(up[..., None], warp_shade[..., None] * warp_col, weft_shade[..., None] * weft_col)

    # uneven lighting: smooth blotches plus a linear gradient
    light = 1.0 + 0.07 * _value_noise(rng, h * ss, w * ss, 3, 3)
    ga = rng.uniform(0.0, 2 * np.pi)
    gs = rng.uniform(0.0, 0.08)
    light = light + gs * ((X - w / 2) * np.cos(ga) + (Y - h / 2) * np.sin(ga)) / max(h, w)
    img = img * light[..., None]

    axes = {"warp": np.array([-st, ct]), "weft": np.array([ct, st])}  # thread directions (x, y)
    cols = {"warp": warp_col, "weft": weft_col}
    mask = None
    if defect is not None:
        Xo, Yo = _grid(h, w, 1)
        img, mask = _FABRIC_DEFECTS[defect](rng, img, X, Y, Xo, Yo, h, w, axes, cols)
        assert mask.any(), f"empty mask for fabric/{defect}"

    return _finish(img, rng, ss, grain_sigma=0.004), mask


def _fabric_hole(rng, img, X, Y, Xo, Yo, h, w, axes, cols):
    r0 = _blob_radius_for_area(rng, h * w, 0.015, 0.06)
    m = r0 + 3
    cx, cy = rng.uniform(m, w - m), rng.uniform(m, h - m)
    blob = Blob(rng, cx, cy, r0, amp=0.22, aspect_max=1.6, hf_amp=0.06)
    sd = blob.sdf(X, Y)
    # darkened, slightly lifted rim around the hole
    rim = np.clip(1.0 + sd / 2.5, 0.0, 1.0) * (sd < 0)
    img = img * (1.0 - 0.35 * rim[..., None])
    # what shows through: a dark surface underneath, slightly shaded
    under = np.array([0.05, 0.045, 0.05]) * rng.uniform(0.7, 1.6)
    inner = 1.0 + 0.3 * np.clip(sd / (r0 + 1e-9), 0.0, 1.0)
    hole_a = np.clip(sd + 0.5, 0.0, 1.0)
    img = img * (1.0 - hole_a[..., None]) + (under * inner[..., None]) * hole_a[..., None]
    # frayed edge: broken thread ends sticking into the hole along the weave directions
    n_str = rng.integers(int(r0 * 0.8) + 4, int(r0 * 1.5) + 8)
    strand_a = {"warp": np.zeros(X.shape), "weft": np.zeros(X.shape)}
    for _ in range(n_str):
        phi = rng.uniform(0.0, 2 * np.pi)
        pb = blob.boundary_point(phi)
        inward = np.array([cx, cy]) - pb
        kind = "warp" if rng.random() < 0.5 else "weft"
        d = axes[kind] * np.sign(np.dot(axes[kind], inward) + 1e-12)
        length = rng.uniform(1.5, min(6.0, 0.8 * r0))
        bend = np.array([-d[1], d[0]]) * rng.uniform(-0.8, 0.8)
        pts = np.array([pb - d * 0.5, pb + d * length * 0.5 + bend * 0.5, pb + d * length + bend])
        dist = _polyline_dist(X, Y, pts, max_d=2.0)
        a = np.clip(0.45 + 0.5 - dist, 0.0, 1.0) * rng.uniform(0.6, 0.95)
        strand_a[kind] = np.maximum(strand_a[kind], a)
    for kind in ("warp", "weft"):
        img = _blend(img, cols[kind] * rng.uniform(0.75, 1.0), strand_a[kind])
    mask = blob.sdf(Xo, Yo) > -1.5
    return img, mask


_STAINS_FABRIC = {
    # name: (mode, colour)
    "coffee": ("mul", np.array([0.62, 0.42, 0.22])),
    "oil": ("mul", np.array([0.30, 0.30, 0.34])),
    "bleach": ("mix", np.array([0.78, 0.80, 0.86])),
    "rust": ("mix", np.array([0.55, 0.25, 0.12])),
    "paint": ("mix", np.array([0.85, 0.72, 0.25])),
}


def _apply_stain(rng, img, sd, soft, kind, strength, X, Y, h, w):
    mode, col = kind
    a = _smoothstep(-soft, soft, sd) * strength
    texture = 1.0 + 0.25 * _value_noise(rng, X.shape[0], X.shape[1], max(2, h // 12), max(2, w // 12))
    a = np.clip(a * texture, 0.0, 1.0)
    if rng.random() < 0.5:  # "tide line": pigment accumulates at the drying edge
        ring = np.exp(-((sd + 0.3 * soft) / 1.2) ** 2) * 0.35 * strength
        a = np.clip(a + ring, 0.0, 1.0)
    if mode == "mul":
        target = img * col
    else:
        target = img * 0.35 + col * 0.65
    return img * (1.0 - a[..., None]) + target * a[..., None]


def _fabric_stain(rng, img, X, Y, Xo, Yo, h, w, axes, cols):
    r0 = _blob_radius_for_area(rng, h * w, 0.02, 0.07)
    m = r0 + 2.0
    cx, cy = rng.uniform(m, w - m), rng.uniform(m, h - m)
    blob = Blob(rng, cx, cy, r0, amp=0.28, aspect_max=1.8)
    soft = rng.uniform(1.5, 3.5)
    names = sorted(_STAINS_FABRIC)
    kind = _STAINS_FABRIC[names[rng.integers(len(names))]]
    strength = rng.uniform(0.65, 0.85)
    img = _apply_stain(rng, img, blob.sdf(X, Y), soft, kind, strength, X, Y, h, w)
    mask = blob.sdf(Xo, Yo) > -0.5 * soft
    return img, mask


def _fabric_cut(rng, img, X, Y, Xo, Yo, h, w, axes, cols):
    length = rng.uniform(30.0, 70.0)
    width = rng.uniform(3.0, 5.0)
    m = 6.0
    for _ in range(100):
        start = rng.uniform([m, m], [w - m, h - m])
        pts = _random_curve(rng, start, length, max_bend=0.6, wiggle=0.5)
        if np.all((pts >= m - 2) & (pts <= np.array([w, h]) - m + 2)):
            break
    dist = _polyline_dist(X, Y, pts, max_d=4.0)
    if rng.random() < 0.5:
        # a cut: dark gap with fuzzy, light, broken fibres along its edges
        fuzz = np.clip(width / 2 + 1.5 - dist, 0.0, 1.0) * 0.45
        img = _blend(img, cols["weft"] * 1.05, fuzz)
        gap = np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)
        img = _blend(img, np.array([0.04, 0.04, 0.05]), gap * rng.uniform(0.8, 0.95))
        extra = 1.5
    else:
        # a pulled thread: raised (bright) thread with a shadow on one side
        off = rng.normal(0.0, 1.0, size=2)
        off = off / np.sqrt((off * off).sum()) * 1.0
        dsh = _polyline_dist(X, Y, pts + off, max_d=4.0)
        sh = np.clip(width / 2 + 0.7 - dsh, 0.0, 1.0) * 0.5
        img = img * (1.0 - sh[..., None])
        thr = np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)
        kind = "weft" if rng.random() < 0.6 else "warp"
        col = cols[kind] * (1.7 if kind == "warp" else 1.15)
        img = _blend(img, np.clip(col, 0, 1), thr * rng.uniform(0.75, 0.95))
        extra = 2.0
    mask = _polyline_dist(Xo, Yo, pts, max_d=4.0) < width / 2 + extra
    return img, mask


_FABRIC_DEFECTS = {"hole": _fabric_hole, "stain": _fabric_stain, "cut": _fabric_cut}


# --------------------------------------------------------------------------- washer
class _Washer:
    def __init__(self, rng, h, w):
        self.cx = w / 2 + rng.uniform(-3.0, 3.0)
        self.cy = h / 2 + rng.uniform(-3.0, 3.0)
        self.rot = np.deg2rad(rng.uniform(-5.0, 5.0))
        self.ro = 44.0 + rng.uniform(-0.4, 0.4)
        self.ri = 17.0 + rng.uniform(-0.3, 0.3)

    def polar(self, X, Y, dx=0.0, dy=0.0):
        ex, ey = X - self.cx - dx, Y - self.cy - dy
        return np.sqrt(ex * ex + ey * ey), np.arctan2(ey, ex)

    def alpha(self, X, Y, dx=0.0, dy=0.0, soft=1.0):
        r, _ = self.polar(X, Y, dx, dy)
        if soft == 1.0:
            return np.clip(self.ro - r + 0.5, 0.0, 1.0) * np.clip(r - self.ri + 0.5, 0.0, 1.0)
        return _smoothstep(-soft, soft, self.ro - r) * _smoothstep(-soft, soft, r - self.ri)

    def world(self, r, ang):
        """Point at radius r and washer-frame angle ang (rotated with the washer)."""
        a = ang + self.rot
        return np.array([self.cx + r * np.cos(a), self.cy + r * np.sin(a)])


def render_washer(rng, defect: str | None, h: int = 112, w: int = 144, ss: int = WASHER_SS):
    X, Y = _grid(h, w, ss)
    ws = _Washer(rng, h, w)
    r, th = ws.polar(X, Y)

    # defect geometry is drawn up front because "missing" changes the silhouette (and its shadow)
    chunk = None
    if defect == "missing":
        ang = rng.uniform(0.0, 2 * np.pi)
        r0 = rng.uniform(7.0, 15.0)
        rc = ws.ro + rng.uniform(-0.5, 0.5) * r0 * 0.5
        c = ws.world(rc, ang)
        chunk = Blob(rng, c[0], c[1], r0, amp=0.25, aspect_max=1.6, hf_amp=0.07)

    # ---- background with the washer's soft shadow
    bg_col = np.array([0.16, 0.17, 0.19]) * rng.uniform(0.85, 1.15) * (1.0 + rng.uniform(-0.04, 0.04, size=3))
    bg_light = 1.0 + 0.06 * _value_noise(rng, h * ss, w * ss, 2, 3) - 0.10 * ((Y / h - 0.5) + 0.5 * (X / w - 0.5))
    bg = bg_light[..., None] * bg_col
    sdx, sdy = 1.5 + rng.uniform(-0.3, 0.3), 2.5 + rng.uniform(-0.3, 0.3)
    shadow = ws.alpha(X, Y, sdx, sdy, soft=3.0)
    if chunk is not None:
        shadow = shadow * (1.0 - np.clip(chunk.sdf(X - sdx, Y - sdy) / 3.0 + 0.5, 0.0, 1.0))
    bg = bg * (1.0 - 0.55 * shadow[..., None])

    # ---- the metal
    L = np.deg2rad(-135.0 + rng.uniform(-10.0, 10.0))  # light from the top-left
    shade = 0.60 * rng.uniform(0.92, 1.08)
    shade = shade + 0.15 * np.cos(2.0 * (th - L - np.pi / 2))  # circular brushing: "bow-tie" highlight
    shade = shade + 0.06 * ((r - ws.ri) / (ws.ro - ws.ri) - 0.5)
    fr = rng.uniform(0.1, 0.35, size=3)
    pr = rng.uniform(0.0, 2 * np.pi, size=3)
    for k in range(3):  # concentric machining marks
        shade = shade + 0.007 * np.sin(2 * np.pi * fr[k] * r + pr[k])
    bev_o = np.clip((r - (ws.ro - 3.0)) / 3.0, 0.0, 1.0)
    bev_i = np.clip(((ws.ri + 3.0) - r) / 3.0, 0.0, 1.0)
    shade = shade + bev_o * (0.22 * np.cos(th - L) - 0.06) + bev_i * (-0.22 * np.cos(th - L) - 0.06)
    metal_tint = np.array([0.93, 0.95, 1.0]) * (1.0 + rng.uniform(-0.03, 0.03, size=3))
    metal = shade[..., None] * metal_tint

    # printed orientation mark (breaks the rotational symmetry): a radial bar and a dot
    rm = (ws.ri + ws.ro) / 2
    p0, p1 = ws.world(rm - 4.5, -np.pi / 2), ws.world(rm + 4.5, -np.pi / 2)
    dbar = _polyline_dist(X, Y, [p0, p1], max_d=3.0)
    pd = ws.world(rm, -np.pi / 2 + 7.0 / rm)
    ddot = np.sqrt((X - pd[0]) ** 2 + (Y - pd[1]) ** 2)
    ink = np.maximum(np.clip(0.8 + 0.5 - dbar, 0.0, 1.0), np.clip(1.6 + 0.5 - ddot, 0.0, 1.0))
    metal = _blend(metal, np.array([0.16, 0.18, 0.27]), ink * 0.85)

    alpha = ws.alpha(X, Y)
    Xo, Yo = _grid(h, w, 1)
    mask = None
    if chunk is not None:
        csd = chunk.sdf(X, Y)
        # rough, darker broken edge next to the missing chunk
        edge = np.clip(1.0 + csd / 2.0, 0.0, 1.0) * (csd < 0)
        metal = metal * (1.0 - 0.35 * edge[..., None])
        alpha = alpha * (1.0 - np.clip(csd + 0.5, 0.0, 1.0))
        mask = (ws.alpha(Xo, Yo) > 0.5) & (chunk.sdf(Xo, Yo) > -1.5)
    elif defect == "scratch":
        metal, mask = _washer_scratch(rng, ws, metal, X, Y, Xo, Yo)
    elif defect == "stain":
        metal, mask = _washer_stain(rng, ws, metal, X, Y, Xo, Yo, h, w)
    elif defect is not None:
        raise ValueError(defect)
    if mask is not None:
        assert mask.any(), f"empty mask for washer/{defect}"

    img = bg * (1.0 - alpha[..., None]) + metal * alpha[..., None]
    return _finish(img, rng, ss, grain_sigma=0.0025), mask


def _washer_scratch(rng, ws, metal, X, Y, Xo, Yo):
    length = rng.uniform(30.0, 70.0)
    width = rng.uniform(2.5, 4.0)
    lo, hi = ws.ri + 3.5, ws.ro - 3.5
    ra = rng.uniform(lo, hi)
    rb = np.clip(ra + rng.uniform(-12.0, 12.0), lo, hi)
    dr = rb - ra
    rmean = (ra + rb) / 2
    dth = np.sqrt(max(length**2 - dr**2, 1.0)) / rmean * rng.choice([-1.0, 1.0])
    a0 = rng.uniform(0.0, 2 * np.pi)
    t = np.linspace(0.0, 1.0, 48)
    wig = 0.5 * np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, 2 * np.pi))
    rr = np.clip(ra + dr * t + wig, lo, hi)
    aa = a0 + dth * t
    pts = np.stack([ws.cx + rr * np.cos(aa), ws.cy + rr * np.sin(aa)], axis=1)
    dist = _polyline_dist(X, Y, pts, max_d=4.0)
    core = np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)
    if rng.random() < 0.5:
        col = np.array([0.97, 0.97, 1.0])  # bright scratch catching the light
        edge = np.clip(width / 2 + 1.3 - dist, 0.0, 1.0) - core
        metal = metal * (1.0 - 0.25 * edge[..., None])
    else:
        col = np.array([0.22, 0.22, 0.25])  # dark groove
    metal = _blend(metal, col, core * rng.uniform(0.7, 0.9))
    mask = (_polyline_dist(Xo, Yo, pts, max_d=4.0) < width / 2 + 1.5) & (ws.alpha(Xo, Yo) > 0.5)
    return metal, mask


_STAINS_WASHER = {
    "rust": ("mix", np.array([0.55, 0.30, 0.14])),
    "oil": ("mul", np.array([0.45, 0.45, 0.50])),
    "heat_tint": ("mix", np.array([0.38, 0.30, 0.62])),
    "residue": ("mix", np.array([0.80, 0.74, 0.52])),
}


def _washer_stain(rng, ws, metal, X, Y, Xo, Yo, h, w):
    r0 = _blob_radius_for_area(rng, h * w, 0.015, 0.05)
    r0 = min(r0, 14.0)
    c = ws.world((ws.ri + ws.ro) / 2 + rng.uniform(-4.0, 4.0), rng.uniform(0.0, 2 * np.pi))
    blob = Blob(rng, c[0], c[1], r0, amp=0.28, aspect_max=1.8)
    soft = rng.uniform(1.2, 3.0)
    names = sorted(_STAINS_WASHER)
    kind = _STAINS_WASHER[names[rng.integers(len(names))]]
    strength = rng.uniform(0.65, 0.85)
    metal = _apply_stain(rng, metal, blob.sdf(X, Y), soft, kind, strength, X, Y, h, w)
    mask = (blob.sdf(Xo, Yo) > -0.5 * soft) & (ws.alpha(Xo, Yo) > 0.5)
    return metal, mask


_RENDER = {"fabric": render_fabric, "washer": render_washer}


# --------------------------------------------------------------------------- driver
def image_specs(category: str):
    """Yield (relative image path, relative mask path or None, split, defect or None, index)."""
    for split, defect, n in [("train", None, N_TRAIN_GOOD), ("test", None, N_TEST_GOOD)] + [
        ("test", d, N_PER_DEFECT) for d in DEFECTS[category]
    ]:
        for k in range(n):
            sub = defect or "good"
            img = f"{category}/{split}/{sub}/{k:03d}.png"
            msk = f"{category}/ground_truth/{sub}/{k:03d}_mask.png" if defect else None
            yield img, msk, split, defect, k


def render(category: str, split: str, defect: str | None, index: int):
    """Render one image (H x W x 3 uint8, RGB) and its mask (H x W uint8 0/255, or None)."""
    cat_id = sorted(CATEGORIES).index(category)
    def_id = 0 if defect is None else 1 + DEFECTS[category].index(defect)
    rng = np.random.default_rng([SEED, cat_id, _SPLIT_IDS[split], def_id, index])
    h, w = SIZES[category]
    img, mask = _RENDER[category](rng, defect, h, w)
    return img, (None if mask is None else _mask_to_u8(mask))


def generate(out_dir, categories=None, png_compression: int = 9) -> list[str]:
    """Write the dataset under ``out_dir``; return the relative paths written.

    ``png_compression`` only changes file sizes, never pixel content (the committed files use 9;
    the tests use a faster level).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    cats = list(categories) if categories is not None else list(CATEGORIES)
    meta = {c: CATEGORIES[c] for c in cats}
    (out / "categories.json").write_text(json.dumps(meta, indent=2) + "\n")
    png = [cv2.IMWRITE_PNG_COMPRESSION, int(png_compression)]
    for cat in cats:
        for rel_img, rel_mask, split, defect, k in image_specs(cat):
            img, mask = render(cat, split, defect, k)
            p = out / rel_img
            p.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(p), np.ascontiguousarray(img[..., ::-1]), png):
                raise OSError(f"could not write {p}")
            written.append(rel_img)
            if rel_mask is not None:
                q = out / rel_mask
                q.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(q), mask, png):
                    raise OSError(f"could not write {q}")
                written.append(rel_mask)
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent), help="output folder (default: next to this script)")
    ap.add_argument("--category", action="append", choices=sorted(CATEGORIES), help="only these categories")
    args = ap.parse_args(argv)
    files = generate(args.out, args.category)
    print(f"wrote {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()
