"""Anti-aliased numpy renderer: background, paint trails, objects, occluder, in that order.

Coverage is analytic: each pixel takes ``clip(0.5 - d, 0, 1)`` of a shape, where d is the signed
distance (in pixels) from the pixel centre to the shape's edge (for polygons the largest signed
distance to an edge line, which keeps corners sharp). Checkered floors are box-filtered exactly;
the stone floor is smooth value noise. Objects are drawn in id order with alpha compositing, the
occluder last, and the same coverage gives each object's visible fraction: its coverage that is
inside the frame and not covered by anything drawn above it, over its whole coverage.
"""

from __future__ import annotations

import math

import numpy as np

from tenku.world.physics import Trajectory
from tenku.world.spec import BACKGROUNDS, COLORS, OCCLUDER_RGB, SceneSpec, shape_vertices

TRAIL_STRENGTH = 0.6  # paint opacity: the trail is the object's colour at 60% over the floor


def _grid(x0: int, x1: int, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5
    return xs[None, :], ys[:, None]


def _edges(shape: str, r: float, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outward unit normals (T, m) x2 and offsets (T, m) of a polygon's edges, one set per angle."""
    nx, ny, off = [], [], []
    for a in angles:
        verts = shape_vertices(shape, r, float(a))
        m = len(verts)
        rx, ry, ro = [], [], []
        for j in range(m):
            (ax, ay), (bx, by) = verts[j], verts[(j + 1) % m]
            ln = math.hypot(bx - ax, by - ay)
            ex, ey = (by - ay) / ln, -(bx - ax) / ln
            if ex * ax + ey * ay < 0:  # make it point away from the centre
                ex, ey = -ex, -ey
            rx.append(ex), ry.append(ey), ro.append(ex * ax + ey * ay)
        nx.append(rx), ny.append(ry), off.append(ro)
    return (np.asarray(nx, np.float32), np.asarray(ny, np.float32), np.asarray(off, np.float32))


def coverage_patches(shape: str, cx: np.ndarray, cy: np.ndarray, r: float, angles: np.ndarray):
    """Coverage of one shape at T positions (px, circumradius r px) on square patches.

    Returns (cov (T, S, S) float32, x0 (T,) int, y0 (T,) int): patch k covers pixels
    [x0[k], x0[k] + S) x [y0[k], y0[k] + S) of the frame (possibly outside it)."""
    size = int(math.ceil(2 * r + 3))
    x0 = np.floor(cx - r - 1).astype(np.int64)
    y0 = np.floor(cy - r - 1).astype(np.int64)
    ar = np.arange(size, dtype=np.float32) + np.float32(0.5)
    dx = (x0 - cx).astype(np.float32)[:, None, None] + ar[None, None, :]  # (T, 1, S)
    dy = (y0 - cy).astype(np.float32)[:, None, None] + ar[None, :, None]  # (T, S, 1)
    if shape == "circle":
        d = np.sqrt(dx * dx + dy * dy) - np.float32(r)
    else:
        angles = np.asarray(angles, np.float64)
        if np.all(angles == angles[0]):
            nx, ny, off = _edges(shape, r, angles[:1])
        else:
            nx, ny, off = _edges(shape, r, angles)
        d = None
        for j in range(nx.shape[1]):
            e = dx * nx[:, j, None, None] + dy * ny[:, j, None, None] - off[:, j, None, None]
            d = e if d is None else np.maximum(d, e)
    return np.clip(np.float32(0.5) - d, 0.0, 1.0), x0, y0


def _box_wave(p: np.ndarray, w: float) -> np.ndarray:
    """Box-filtered square wave (+1 on [0,1), -1 on [1,2), period 2) over a window of width w."""
    def tri(q):  # integral of the square wave
        q = np.mod(q, 2.0)
        return np.where(q < 1.0, q, 2.0 - q)
    return (tri(p + w / 2) - tri(p - w / 2)) / w


def background(spec: SceneSpec, cam_x: np.ndarray, cam_y: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) float32 floor seen by cameras whose top-left corners are at (cam_x, cam_y) world units."""
    bg = BACKGROUNDS[spec.background]
    H, W, ppu = spec.height, spec.width, spec.px_per_unit
    cam_x, cam_y = np.atleast_1d(np.asarray(cam_x, np.float64)), np.atleast_1d(np.asarray(cam_y, np.float64))
    base = np.asarray(bg["rgb"], np.float32)
    if bg["kind"] == "plain":
        return np.broadcast_to(base, (len(cam_x), H, W, 3)).copy()
    xs = (np.arange(W) + 0.5)[None, :] / ppu + cam_x[:, None]  # (T, W) world coordinates of pixel centres
    ys = (np.arange(H) + 0.5)[None, :] / ppu + cam_y[:, None]  # (T, H)
    if bg["kind"] == "checker":
        cell, w = bg["cell"], 1.0 / (ppu * bg["cell"])
        c = _box_wave(ys / cell, w)[:, :, None] * _box_wave(xs / cell, w)[:, None, :]
        mix = ((1.0 - c) / 2.0).astype(np.float32)[..., None]
        return base * (1 - mix) + np.asarray(bg["rgb2"], np.float32) * mix
    # stone: smooth value noise on a world-anchored grid
    cell = bg["cell"]
    nx = int(math.ceil(spec.world_width / cell)) + 2
    ny = int(math.ceil(spec.world_height / cell)) + 2
    grid = np.random.default_rng(spec.texture_seed).uniform(-1.0, 1.0, size=(ny + 2, nx + 2)).astype(np.float32)
    gx, gy = np.clip(xs / cell, 0, nx), np.clip(ys / cell, 0, ny)
    ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    fx = (gx - ix).astype(np.float32)[:, None, :]
    fy = (gy - iy).astype(np.float32)[:, :, None]
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    iy_, ix_ = iy[:, :, None], ix[:, None, :]
    v = ((grid[iy_, ix_] * (1 - fx) + grid[iy_, ix_ + 1] * fx) * (1 - fy)
         + (grid[iy_ + 1, ix_] * (1 - fx) + grid[iy_ + 1, ix_ + 1] * fx) * fy)
    return base + (np.float32(bg["amp"]) * v)[..., None]


def _segment_coverage(ax, ay, bx, by, half_w, H, W):
    """Coverage of a thick segment (px) inside its bounding box, clipped to the frame."""
    x0 = max(int(math.floor(min(ax, bx) - half_w - 1)), 0)
    x1 = min(int(math.ceil(max(ax, bx) + half_w + 1)), W)
    y0 = max(int(math.floor(min(ay, by) - half_w - 1)), 0)
    y1 = min(int(math.ceil(max(ay, by) + half_w + 1)), H)
    if x0 >= x1 or y0 >= y1:
        return None
    xs, ys = _grid(x0, x1, y0, y1)
    ex, ey = bx - ax, by - ay
    ll = ex * ex + ey * ey
    px, py = xs - np.float32(ax), ys - np.float32(ay)
    if ll > 1e-12:
        u = np.clip((px * np.float32(ex) + py * np.float32(ey)) / np.float32(ll), 0.0, 1.0)
    else:
        u = np.zeros_like(px * py)
    qx, qy = px - u * np.float32(ex), py - u * np.float32(ey)
    d = np.sqrt(qx * qx + qy * qy)
    return (x0, x1, y0, y1), np.clip(np.float32(half_w + 0.5) - d, 0.0, 1.0)


def _trail_alpha(spec: SceneSpec, traj: Trajectory, i: int) -> np.ndarray:
    """(T, H, W) paint coverage of object i's trail: every segment reached by frame k, max-combined."""
    H, W, ppu, T = spec.height, spec.width, spec.px_per_unit, len(traj.t)
    half_w = spec.trail_width * ppu / 2
    pts = traj.trail_points[i]
    new = np.zeros((T, H, W), np.float32)
    camera_moves = bool(spec.camera_vx or spec.camera_vy)
    for k in range(T):
        cx, cy = traj.camera[k]
        # with a still camera each segment is drawn once (when reached) and kept by the running max
        segs = [(a, b) for a, b in zip(pts, pts[1:]) if (b[0] <= k if camera_moves else b[0] == k)]
        for a, b in segs:
            out = _segment_coverage((a[1] - cx) * ppu, (a[2] - cy) * ppu, (b[1] - cx) * ppu,
                                    (b[2] - cy) * ppu, half_w, H, W)
            if out is not None:
                (x0, x1, y0, y1), cov = out
                np.maximum(new[k, y0:y1, x0:x1], cov, out=new[k, y0:y1, x0:x1])
    return new if camera_moves else np.maximum.accumulate(new, axis=0)


def render(spec: SceneSpec, traj: Trajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns frames (T, H, W, 3) uint8, visible fraction (T, N) and in-frame fraction (T, N)."""
    H, W, ppu = spec.height, spec.width, spec.px_per_unit
    T, N = len(traj.t), len(spec.objects)
    cams = traj.camera  # (T, 2) world units
    if spec.camera_vx or spec.camera_vy:
        img = background(spec, cams[:, 0], cams[:, 1])  # (T, H, W, 3)
    else:
        img = np.repeat(background(spec, cams[:1, 0], cams[:1, 1]), T, axis=0)
    for i in spec.trail:
        a = (_trail_alpha(spec, traj, i) * np.float32(TRAIL_STRENGTH))[..., None]
        img += (np.asarray(COLORS[spec.objects[i].color], np.float32) - img) * a
    # coverage patches of every object at every frame, and their parts inside the frame
    patches = []  # per object: list over frames of (x0, x1, y0, y1, clipped cov) or None
    in_frame = np.zeros((T, N))
    for i, o in enumerate(spec.objects):
        px = (traj.pos[:, i, 0] - cams[:, 0]) * ppu
        py = (traj.pos[:, i, 1] - cams[:, 1]) * ppu
        cov, x0, y0 = coverage_patches(o.shape, px, py, o.radius * ppu, traj.angle[:, i])
        S = cov.shape[1]
        total = cov.sum(axis=(1, 2))
        per = []
        for k in range(T):
            a0, a1 = max(int(x0[k]), 0), min(int(x0[k]) + S, W)
            b0, b1 = max(int(y0[k]), 0), min(int(y0[k]) + S, H)
            if a0 >= a1 or b0 >= b1 or total[k] <= 0:
                per.append(None)
                continue
            c = cov[k, b0 - y0[k]:b1 - y0[k], a0 - x0[k]:a1 - x0[k]]
            per.append((a0, a1, b0, b1, c, float(total[k])))
            in_frame[k, i] = float(c.sum()) / float(total[k])
        patches.append(per)
    occ = None
    if spec.occluder is not None:
        ox0, oy0, ox1, oy1 = spec.occluder
        xs = (np.arange(W, dtype=np.float64) + 0.5)[None, :]
        ys = (np.arange(H, dtype=np.float64) + 0.5)[None, :]
        lx, rx = ((ox0 - cams[:, 0]) * ppu)[:, None], ((ox1 - cams[:, 0]) * ppu)[:, None]
        ty, by = ((oy0 - cams[:, 1]) * ppu)[:, None], ((oy1 - cams[:, 1]) * ppu)[:, None]
        cov_x = np.clip(np.minimum(xs - lx, rx - xs) + 0.5, 0.0, 1.0)  # (T, W)
        cov_y = np.clip(np.minimum(ys - ty, by - ys) + 0.5, 0.0, 1.0)  # (T, H)
        occ = (cov_y[:, :, None] * cov_x[:, None, :]).astype(np.float32)  # (T, H, W)
    # visibility, top-down: the coverage left after everything drawn above
    trans = np.ones((T, H, W), np.float32) if occ is None else 1.0 - occ
    visible = np.zeros((T, N))
    for i in reversed(range(N)):
        for k, p in enumerate(patches[i]):
            if p is None:
                continue
            a0, a1, b0, b1, c, total = p
            t = trans[k, b0:b1, a0:a1]
            visible[k, i] = float((c * t).sum()) / total
            t *= 1.0 - c
    # colour, bottom-up
    for i, o in enumerate(spec.objects):
        rgb = np.asarray(COLORS[o.color], np.float32)
        for k, p in enumerate(patches[i]):
            if p is None:
                continue
            a0, a1, b0, b1, c, _ = p
            region = img[k, b0:b1, a0:a1]
            region += (rgb - region) * c[..., None]
    if occ is not None:
        img += (np.asarray(OCCLUDER_RGB[spec.occluder_shade], np.float32) - img) * occ[..., None]
    frames = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames, np.clip(visible, 0.0, 1.0), np.clip(in_frame, 0.0, 1.0)
