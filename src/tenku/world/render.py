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


def shape_coverage(shape: str, cx: float, cy: float, r: float, angle: float,
                   x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """Coverage (y1-y0, x1-x0) float32 of a shape centred at (cx, cy) px with circumradius r px."""
    xs, ys = _grid(x0, x1, y0, y1)
    dx, dy = xs - np.float32(cx), ys - np.float32(cy)
    if shape == "circle":
        d = np.sqrt(dx * dx + dy * dy) - np.float32(r)
    else:
        verts = shape_vertices(shape, r, angle)
        d = None
        m = len(verts)
        for j in range(m):
            (ax, ay), (bx, by) = verts[j], verts[(j + 1) % m]
            ex, ey = bx - ax, by - ay
            ln = math.hypot(ex, ey)
            nx, ny = ey / ln, -ex / ln  # outward normal for vertices in screen-clockwise order
            if nx * ax + ny * ay < 0:
                nx, ny = -nx, -ny
            e = dx * np.float32(nx) + dy * np.float32(ny) - np.float32(nx * ax + ny * ay)
            d = e if d is None else np.maximum(d, e)
    return np.clip(np.float32(0.5) - d, 0.0, 1.0)


def _box_wave(p: np.ndarray, w: float) -> np.ndarray:
    """Box-filtered square wave (+1 on [0,1), -1 on [1,2), period 2) over a window of width w."""
    def tri(q):  # integral of the square wave
        q = np.mod(q, 2.0)
        return np.where(q < 1.0, q, 2.0 - q)
    return (tri(p + w / 2) - tri(p - w / 2)) / w


def _value_noise(seed: int, nx: int, ny: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(ny + 2, nx + 2)).astype(np.float32)


def background(spec: SceneSpec, cam_x: float, cam_y: float) -> np.ndarray:
    """(H, W, 3) float32 floor seen by a camera whose top-left corner is at (cam_x, cam_y) world units."""
    bg = BACKGROUNDS[spec.background]
    H, W, ppu = spec.height, spec.width, spec.px_per_unit
    base = np.asarray(bg["rgb"], np.float32)
    if bg["kind"] == "plain":
        return np.broadcast_to(base, (H, W, 3)).copy()
    xs = (np.arange(W, dtype=np.float64) + 0.5) / ppu + cam_x  # world coordinates of pixel centres
    ys = (np.arange(H, dtype=np.float64) + 0.5) / ppu + cam_y
    if bg["kind"] == "checker":
        cell, w = bg["cell"], 1.0 / (ppu * bg["cell"])
        c = _box_wave(ys / cell, w)[:, None] * _box_wave(xs / cell, w)[None, :]
        mix = ((1.0 - c) / 2.0).astype(np.float32)[..., None]
        return base * (1 - mix) + np.asarray(bg["rgb2"], np.float32) * mix
    # stone: bilinear value noise on a world-anchored grid
    cell = bg["cell"]
    nx = int(math.ceil(spec.world_width / cell)) + 2
    ny = int(math.ceil(spec.world_height / cell)) + 2
    grid = _value_noise(spec.texture_seed, nx, ny)
    gx, gy = np.clip(xs / cell, 0, nx), np.clip(ys / cell, 0, ny)
    ix, iy = np.floor(gx).astype(int), np.floor(gy).astype(int)
    fx = (gx - ix).astype(np.float32)[None, :]
    fy = (gy - iy).astype(np.float32)[:, None]
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    g00 = grid[iy][:, ix]
    g01 = grid[iy][:, ix + 1]
    g10 = grid[iy + 1][:, ix]
    g11 = grid[iy + 1][:, ix + 1]
    v = (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy
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


def render(spec: SceneSpec, traj: Trajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns frames (T, H, W, 3) uint8, visible fraction (T, N) and in-frame fraction (T, N)."""
    H, W, ppu = spec.height, spec.width, spec.px_per_unit
    T, N = len(traj.t), len(spec.objects)
    frames = np.empty((T, H, W, 3), np.uint8)
    visible = np.zeros((T, N))
    in_frame = np.zeros((T, N))
    cams = traj.camera
    camera_moves = bool(spec.camera_vx or spec.camera_vy)
    static_bg = None if camera_moves else background(spec, cams[0, 0], cams[0, 1])
    trail_alpha = {i: np.zeros((H, W), np.float32) for i in spec.trail}
    half_w = spec.trail_width * ppu / 2
    for k in range(T):
        cx, cy = cams[k]
        img = static_bg.copy() if static_bg is not None else background(spec, cx, cy)
        # paint trails: segments reached by frame k, accumulated with max (recomputed if the camera moves)
        for i in spec.trail:
            alpha = trail_alpha[i]
            pts = traj.trail_points[i]
            if camera_moves:
                alpha[:] = 0
                segs = [(a, b) for a, b in zip(pts, pts[1:]) if b[0] <= k]
            else:
                segs = [(a, b) for a, b in zip(pts, pts[1:]) if b[0] == k]
            for a, b in segs:
                out = _segment_coverage((a[1] - cx) * ppu, (a[2] - cy) * ppu, (b[1] - cx) * ppu,
                                        (b[2] - cy) * ppu, half_w, H, W)
                if out is not None:
                    (x0, x1, y0, y1), cov = out
                    np.maximum(alpha[y0:y1, x0:x1], cov, out=alpha[y0:y1, x0:x1])
            a3 = (alpha * np.float32(TRAIL_STRENGTH))[..., None]
            img = img * (1 - a3) + np.asarray(COLORS[spec.objects[i].color], np.float32) * a3
        # object coverage patches, clipped to the frame
        patches = []
        for i, o in enumerate(spec.objects):
            px, py = (traj.pos[k, i, 0] - cx) * ppu, (traj.pos[k, i, 1] - cy) * ppu
            r = o.radius * ppu
            x0, x1 = int(math.floor(px - r - 1)), int(math.ceil(px + r + 1))
            y0, y1 = int(math.floor(py - r - 1)), int(math.ceil(py + r + 1))
            cov = shape_coverage(o.shape, px, py, r, float(traj.angle[k, i]), x0, x1, y0, y1)
            total = float(cov.sum())
            cx0, cx1, cy0, cy1 = max(x0, 0), min(x1, W), max(y0, 0), min(y1, H)
            if cx0 < cx1 and cy0 < cy1:
                clip = cov[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
                patches.append((i, (cx0, cx1, cy0, cy1), clip))
                in_frame[k, i] = float(clip.sum()) / total if total > 0 else 0.0
        occ = None
        if spec.occluder is not None:
            ox0, oy0, ox1, oy1 = [(v - c) * ppu for v, c in zip(spec.occluder, (cx, cy, cx, cy))]
            xs, ys = _grid(0, W, 0, H)
            cov_x = np.clip(np.minimum(xs - ox0, ox1 - xs) + 0.5, 0.0, 1.0)
            cov_y = np.clip(np.minimum(ys - oy0, oy1 - ys) + 0.5, 0.0, 1.0)
            occ = (cov_y * cov_x).astype(np.float32)
        # visibility, top-down: what is left after everything drawn above
        trans = np.ones((H, W), np.float32) if occ is None else 1.0 - occ
        for i, (x0, x1, y0, y1), cov in reversed(patches):
            o = spec.objects[i]
            total_px = cov.sum() / in_frame[k, i] if in_frame[k, i] > 0 else 0.0
            seen = float((cov * trans[y0:y1, x0:x1]).sum())
            visible[k, i] = seen / total_px if total_px > 0 else 0.0
            trans[y0:y1, x0:x1] *= 1.0 - cov
        # colour, bottom-up
        for i, (x0, x1, y0, y1), cov in patches:
            a3 = cov[..., None]
            region = img[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = region + (np.asarray(COLORS[spec.objects[i].color], np.float32) - region) * a3
        if occ is not None:
            shade = np.asarray(OCCLUDER_RGB[spec.occluder_shade], np.float32)
            img = img + (shade - img) * occ[..., None]
        frames[k] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames, np.clip(visible, 0.0, 1.0), np.clip(in_frame, 0.0, 1.0)
