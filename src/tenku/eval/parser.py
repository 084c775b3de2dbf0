"""The object parser: find each world object in RGB frames by its colour.

Pixels are classified to the nearest palette colour in CIELAB (a perceptual space, so the threshold
means the same for every hue) and kept only within ``max_delta_e`` of it; colours listed as
``ignore`` (backgrounds, floor textures, occluders) win the pixels nearest to them. Connected
components of one colour are objects (one pixel within ``peak_delta_e`` of the palette colour is
required, which rules out paint trails). For each object the parser estimates every pixel's coverage
(alpha) by projecting its colour onto the line between the local background (the median of a ring
around the object) and the object's own colour (the median of its core), in the chroma plane (RGB
minus its grey component: floors and occluders are near grey, so a checkered or noisy floor does not
disturb it). Anti-aliased, blurred (VAE) or slightly hue-shifted edges so still give a sub-pixel
centroid. Coordinates follow the world's ground truth: x right, y down, pixel centres at +0.5.

Shape class comes from the object's radial profile: the coverage in each of 24 angular sectors around
the centroid gives a radius R(phi) (sector area = R^2 dphi / 2); its 3-fold Fourier harmonic
|mean(R e^{3i phi})| / mean(R) is large for triangles (about 0.12 when sharp), its 4-fold one for squares
(about 0.06), and both are near 0 for circles. Both are rotation invariant and survive blur.
Edge pixels of one colour blended into the background can look like another palette colour (magenta
over black looks purple); a small component lying mostly in the blur halo of a larger one is folded
into it instead of being reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from tenku.errors import TenkuError

SHAPES = ("circle", "square", "triangle")


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 or float 0..255 sRGB -> (..., 3) float CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


@dataclasses.dataclass(frozen=True)
class ParserConfig:
    """Thresholds of the parser. ``max_delta_e``: CIELAB distance within which a pixel counts as a
    palette colour; ``min_pixels``: smaller components are noise; ``edge_px``: how far around the core
    partial-coverage pixels are looked for (blur width); ``peak_delta_e``: an object has at least one
    pixel this close to its palette colour (a paint trail, a 60% blend, has none)."""

    max_delta_e: float = 32.0
    peak_delta_e: float = 16.0
    min_pixels: int = 1
    edge_px: int = 2
    ring_px: int = 2
    triangle_h3: float = 0.02  # 3-fold harmonic of the radial profile above which: triangle
    square_h4: float = 0.015  # 4-fold harmonic above which (and above the 3-fold one): square
    min_alpha: float = 0.2  # estimated coverage below this (outside the core) is background texture
    solid_alpha: float = 0.8  # coverage from which a pixel is inside the object (not edge, not trail)
    min_area: float = 1.5  # smaller coverage-weighted areas are noise
    halo_fraction: float = 0.5  # share of a small component inside a larger one's halo to fold it in
    mix_tolerance: float = 40.0  # RGB distance from the background-object blend line to fold it in
    max_components: int = 16  # at most this many components per frame (the largest) are measured


@dataclasses.dataclass(frozen=True)
class Detection:
    """One object in one frame. ``x, y`` centroid in pixels (centres at +0.5); ``area`` coverage-weighted
    pixel area; ``pixels`` core pixel count; ``bbox`` (x0, y0, x1, y1) exclusive; ``h3``/``h4`` the
    3- and 4-fold harmonics of the radial profile behind ``shape``."""

    color: str
    x: float
    y: float
    area: float
    pixels: int
    shape: str
    h3: float
    h4: float
    bbox: tuple[int, int, int, int]
    touches_border: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def radial_harmonics(alpha: np.ndarray, x: float, y: float, sectors: int = 24, sub: int = 4
                      ) -> tuple[float, float]:
    """3- and 4-fold harmonics of the radius profile R(phi) of a coverage map around (x, y).

    Each pixel is split into ``sub x sub`` samples carrying its coverage; the coverage in each angular
    sector gives R = sqrt(2 * area / dphi)."""
    ys, xs = np.nonzero(alpha > 0.02)
    if len(xs) == 0:
        return 0.0, 0.0
    w = alpha[ys, xs]
    o = (np.arange(sub) + 0.5) / sub
    px = xs[:, None] + np.repeat(o, sub)[None]  # (N, sub*sub)
    py = ys[:, None] + np.tile(o, sub)[None]
    phi = np.arctan2(py - y, px - x)
    b = ((phi + np.pi) / (2 * np.pi) * sectors).astype(np.int64) % sectors
    area = np.bincount(b.ravel(), weights=np.repeat(w, sub * sub), minlength=sectors) / (sub * sub)
    R = np.sqrt(2 * area / (2 * np.pi / sectors))
    if R.mean() <= 0:
        return 0.0, 0.0
    ang = (np.arange(sectors) + 0.5) / sectors * 2 * np.pi
    h3 = abs((R * np.exp(3j * ang)).mean()) / R.mean()
    h4 = abs((R * np.exp(4j * ang)).mean()) / R.mean()
    return float(h3), float(h4)


class ObjectParser:
    """Parse frames into per-object detections: ``ObjectParser(palette).parse_video(frames)``.

    ``palette``: colour name -> RGB of the objects to find; ``ignore``: RGBs that are never objects
    (backgrounds, textures, occluders). Defaults come from :mod:`tenku.world` when it is installed.
    """

    def __init__(self, palette: Mapping[str, Sequence[int]] | None = None,
                 ignore: Sequence[Sequence[int]] = (), config: ParserConfig = ParserConfig()):
        if palette is None:
            palette = world_palette()
        if not palette:
            raise TenkuError("the object parser needs at least one palette colour (name -> RGB)")
        self.names = list(palette)
        self.rgb = np.array([palette[n] for n in self.names], dtype=np.float64)
        self.lab = srgb_to_lab(self.rgb)
        self.ignore_lab = srgb_to_lab(np.array(ignore, dtype=np.float64).reshape(-1, 3))
        self.config = config
        self._table: np.ndarray | None = None
        self._dist: np.ndarray | None = None

    def _lut(self) -> np.ndarray:
        # classification of every colour quantised to 6 bits per channel: (64, 64, 64) int8
        if self._table is None:
            q = (np.arange(64) * 4 + 2).astype(np.float64)
            grid = np.stack(np.meshgrid(q, q, q, indexing="ij"), -1).reshape(-1, 3)
            idx, best = self._classify_rgb(grid)
            self._table = idx.astype(np.int8).reshape(64, 64, 64)
            self._dist = best.astype(np.float32).reshape(64, 64, 64)
        return self._table

    def _classify_rgb(self, rgb: np.ndarray) -> np.ndarray:
        lab = srgb_to_lab(rgb)
        d = np.linalg.norm(lab[:, None, :] - self.lab[None], axis=-1)  # (N, K)
        idx = d.argmin(1)
        best = d[np.arange(len(d)), idx]
        keep = best <= self.config.max_delta_e
        if len(self.ignore_lab):
            di = np.linalg.norm(lab[:, None, :] - self.ignore_lab[None], axis=-1).min(1)
            keep &= best < di
        return np.where(keep, idx, -1), best

    def classify(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (H, W) int: palette index, or -1 for background."""
        q = frame >> 2
        return self._lut()[q[..., 0], q[..., 1], q[..., 2]].astype(np.int64)

    def palette_distance(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) CIELAB distance of each pixel to its nearest palette colour."""
        self._lut()
        q = frame >> 2
        return self._dist[q[..., 0], q[..., 1], q[..., 2]]

    def parse_frame(self, frame: np.ndarray) -> list[Detection]:
        """All objects in one (H, W, 3) uint8 frame, sorted by colour then position."""
        from scipy import ndimage

        frame = _check_frames(frame[None])[0]
        cfg = self.config
        labels = self.classify(frame)
        dist = self.palette_distance(frame)
        labelled_any = labels >= 0
        f = frame.astype(np.float64)
        background = np.median(f[~labelled_any], axis=0) if (~labelled_any).any() else np.zeros(3)
        comps = []  # (pixels, palette index, slices, mask within slices)
        for k in range(len(self.names)):
            mask = labels == k
            if not mask.any():
                continue
            comp, n = ndimage.label(mask, structure=np.ones((3, 3)))
            npix = np.bincount(comp.ravel(), minlength=n + 1)[1:]
            peak = ndimage.minimum(dist, comp, index=np.arange(1, n + 1))
            ok = np.nonzero((npix >= cfg.min_pixels) & (np.asarray(peak) <= cfg.peak_delta_e))[0]
            ok = ok[np.argsort(-npix[ok], kind="stable")][: cfg.max_components]
            if len(ok) == 0:
                continue
            slices = ndimage.find_objects(comp)
            for j in ok:
                sl = slices[j]
                comps.append((int(npix[j]), k, sl, comp[sl] == j + 1))
        comps.sort(key=lambda c: (-c[0], c[1]))
        comps = comps[: cfg.max_components]
        kept: list[tuple[int, int, np.ndarray]] = []  # (pixels, palette index, full-frame core)
        halos, owns, colours = [], [], []
        for npix, k, sl, small in comps:
            core = np.zeros(labels.shape, bool)
            core[sl] = small
            colour = np.median(f[core], axis=0)
            folded = False
            for (bpix, bk, _), h, o, c in zip(kept, halos, owns, colours):
                if (bk != k and npix < bpix and (core & h).sum() >= cfg.halo_fraction * npix
                        and _segment_distance(colour, background, c) <= cfg.mix_tolerance):
                    o |= core  # a blend of the bigger object's colour with the background
                    folded = True
                    break
            if not folded:
                kept.append((npix, k, core))
                halos.append(ndimage.binary_dilation(core, iterations=cfg.edge_px + 1))
                owns.append(core.copy())
                colours.append(colour)
        out = [self._measure(f, core, npix, self.names[k], labelled_any & ~o, c)
               for (npix, k, core), o, c in zip(kept, owns, colours)]
        out = [d for d in out if d.area >= cfg.min_area]
        out.sort(key=lambda d: (d.color, d.y, d.x))
        return out

    def _measure(self, f, core, npix, name, others, obj) -> Detection:
        from scipy import ndimage

        cfg = self.config
        H, W = core.shape
        cys, cxs = np.nonzero(core)
        m = cfg.edge_px + cfg.ring_px + 1
        y0, y1 = max(cys.min() - m, 0), min(cys.max() + m + 1, H)
        x0, x1 = max(cxs.min() - m, 0), min(cxs.max() + m + 1, W)
        core_c, others_c, fc = core[y0:y1, x0:x1], others[y0:y1, x0:x1], f[y0:y1, x0:x1]
        edge = ndimage.binary_dilation(core_c, iterations=cfg.edge_px) & ~others_c
        ring = ndimage.binary_dilation(edge, iterations=cfg.ring_px) & ~edge & ~others_c
        dd = 0.0
        if ring.sum() >= 3:
            # unmix in the chroma plane (RGB minus its grey component): floors and occluders are near
            # grey, so a checkered or noisy floor does not disturb the estimated coverage
            fc = fc - fc.mean(-1, keepdims=True)
            bg = np.median(fc[ring], axis=0)
            d = (obj - obj.mean()) - bg
            dd = float(d @ d)
        if dd > 100.0:  # object and background differ enough to estimate coverage
            alpha = np.clip(((fc - bg) @ d) / dd, 0.0, 1.0) * edge
            # texture noise outside the core is not coverage
            alpha[~core_c & (alpha < cfg.min_alpha)] = 0.0
            solid, n = ndimage.label(alpha >= cfg.solid_alpha)
            if n >= 1:  # keep the biggest solid blob and its edge: a paint trail is not the object
                sizes = ndimage.sum_labels(np.ones_like(alpha), solid, np.arange(1, n + 1))
                main = solid == (1 + int(np.argmax(sizes)))
                alpha = alpha * ndimage.binary_dilation(main, iterations=cfg.edge_px)
        else:
            alpha = core_c.astype(np.float64)
        area = float(alpha.sum())
        yy, xx = np.mgrid[y0:y1, x0:x1]
        x = float((alpha * (xx + 0.5)).sum() / area)
        y = float((alpha * (yy + 0.5)).sum() / area)
        h3, h4 = radial_harmonics(alpha, x - x0, y - y0)
        if h3 > cfg.triangle_h3 and h3 > h4:
            shape = "triangle"
        elif h4 > cfg.square_h4:
            shape = "square"
        else:
            shape = "circle"
        ey, ex = np.nonzero(alpha > 0.05)
        x0, y0 = int(x0), int(y0)
        bbox = (int(ex.min()) + x0, int(ey.min()) + y0, int(ex.max()) + x0 + 1, int(ey.max()) + y0 + 1)
        touches = bbox[0] == 0 or bbox[1] == 0 or bbox[2] == W or bbox[3] == H
        return Detection(color=name, x=x, y=y, area=area, pixels=npix, shape=shape, h3=h3, h4=h4,
                         bbox=bbox, touches_border=touches)

    def parse_video(self, frames: np.ndarray) -> list[list[Detection]]:
        """(T, H, W, 3) uint8 -> per frame, the list of detections."""
        frames = _check_frames(frames)
        return [self.parse_frame(fr) for fr in frames]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from point p to the segment a-b (RGB)."""
    d = b - a
    t = float(np.clip((p - a) @ d / max(float(d @ d), 1e-9), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * d)))


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise TenkuError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise TenkuError(f"expected uint8 frames, got {frames.dtype}; convert with "
                         "(x * 255).round().clip(0, 255).astype(np.uint8)")
    return frames


def world_palette() -> dict[str, tuple[int, int, int]]:
    """The world's object colours (``tenku.world.COLORS``: name -> RGB)."""
    try:
        from tenku.world import COLORS
    except ImportError as e:
        raise TenkuError(f"the object parser needs tenku.world.COLORS for its default palette ({e}); "
                         "pass a palette explicitly") from None
    return {k: tuple(int(c) for c in v) for k, v in COLORS.items()}
