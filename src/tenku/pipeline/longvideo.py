"""Windowed generation: any length from a model trained on short windows, in memory that does not grow.

A window is the model's training clip in latent frames (``W = 1 + (sample_config.num_frames - 1) / tf``).
Every window after the first is conditioned on the end of what came before: the last
``c = 1 + tf * (k - 1)`` frames are encoded with the VAE as the *start* of a clip (latent 0 is one
frame, as in training) and held fixed as ``k`` clean latent frames; the window generates the rest.
Frames given *after* the new ones (connect, loop, backward extension) enter the same way as ``k2``
clean latent frames at the end of a window: ``tf * k2`` frames encoded behind one copy of their first
frame (so the latent grid lines up), and the window generates the frames before them.

Each window is decoded on its own (the VAE streams it in time chunks) and its new frames are yielded
at once, so a caller can hand them to the mp4 encoder: a 60 s clip holds one window of latents, one
window of frames and ``c`` frames of context, never the whole video. Backward extension is the one
exception: its windows are made right to left, so its new frames are held until the end.

Seam matching (:func:`match_seams`, on by default): a window's decoded context frames are the VAE's
round trip of the given frames, not the frames themselves, so new frames would jump by the VAE's
reconstruction error where they meet given frames (a colour shift, lost texture). The difference
between a given frame and its decoded twin is added to the new frames: its per-channel median (the
colour shift) throughout the window, the rest fading out over ``2 * tf`` frames from the seam.

Frame arithmetic (tf = the VAE's temporal factor): a window with ``g`` generated latent frames adds
``tf * g`` frames after a head context and ``1 + tf * (g - 1)`` frames without one. So forward
continuations add multiples of ``tf`` frames and a fresh start adds ``1 + tf * m``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import torch

from tenku.data.dataset import tensor_to_frames
from tenku.errors import TenkuError
from tenku.progress import progress_enabled


@dataclasses.dataclass(frozen=True)
class Window:
    """One window of a schedule, counted in latent frames: ``head`` clean frames from the frames before,
    ``new`` generated frames, ``tail`` clean frames from the frames after. ``drop_first``: a backward
    window other than the leftmost one drops its first decoded frame (its left neighbour covers it)."""

    head: int
    new: int
    tail: int
    drop_first: bool = False

    @property
    def size(self) -> int:
        return self.head + self.new + self.tail

    def new_frames(self, tf: int) -> int:
        if self.head:
            return tf * self.new
        return 1 + tf * (self.new - 1) - int(self.drop_first)


@dataclasses.dataclass
class Conditioning:
    """What one window hands to :meth:`TenkuPipeline.denoise`: latents (1, C, T', h, w) whose frames
    flagged in ``cond_mask`` (T',) are held fixed; or ``init_latents`` + ``strength`` (SDEdit)."""

    cond_latents: torch.Tensor | None = None
    cond_mask: torch.Tensor | None = None
    init_latents: torch.Tensor | None = None
    strength: float | None = None


def context_latents(frames_available: int, context: int, tf: int) -> int:
    """Head context in latent frames that ``frames_available`` frames allow (at most ``context``)."""
    if frames_available <= 0:
        return 0
    return max(1, min(context, (frames_available - 1) // tf + 1))


def forward_schedule(num_new: int, window: int, context: int, tf: int, head_frames: int = 0,
                     tail: int = 0, tail_from_start: bool = False, closing_context: int | None = None) -> list[Window]:
    """Windows that add ``num_new`` frames after ``head_frames`` given frames (0: a fresh start), the last
    one conditioned on ``tail`` clean latent frames of the frames after (0: none). ``tail_from_start``
    (loops): the frames after are the first frames of this very video, so the first window cannot be
    the last one. The closing window (the one with the tail) gets as many new frames as it can hold,
    and at most ``closing_context`` head latent frames (None: ``context``), so it has room to bridge."""
    def frames(g: int, k1: int) -> int:
        return tf * g if k1 else 1 + tf * (g - 1)

    def g_for(n: int, k1: int) -> int:
        return n // tf if k1 else (n - 1) // tf + 1

    base = 0 if head_frames else 1
    if num_new < 1 or (tf > 1 and num_new % tf != base % tf):
        what = f"a multiple of {tf}" if head_frames else f"1 + {tf}*k"
        raise TenkuError(f"cannot add {num_new} frames here: this needs {what} frames")
    wins: list[Window] = []
    remaining, avail = num_new, head_frames
    closing = context if closing_context is None else min(context, closing_context)
    while remaining > 0:
        k1 = context_latents(avail, context, tf)
        can_end = tail and not (tail_from_start and not wins)
        if can_end:
            k_end = context_latents(avail, closing, tf)
            gmax = window - k_end - tail
            if gmax >= 1 and remaining <= frames(gmax, k_end):
                wins.append(Window(k_end, g_for(remaining, k_end), tail))
                break
        if tail:  # leave the closing window as many new frames as it can hold (room to bridge to the tail)
            k_last = context_latents(avail + frames(1, k1), closing, tf)
            room = max(tf, min(remaining - tf, remaining - frames(window - k_last - tail, k_last)))
            g = min(window - k1, g_for(room, k1))
        else:
            g = min(window - k1, g_for(remaining, k1))
        if g < 1 or window - k1 - tail < 1:
            raise TenkuError(f"a window of {window} latent frames cannot hold {k1} given frames before, {tail} "
                             f"after and any new ones; use a model with a longer window or less context")
        wins.append(Window(k1, g, 0))
        remaining -= frames(g, k1)
        avail += frames(g, k1)
    return wins


def backward_schedule(num_new: int, window: int, tail: int, tf: int) -> list[Window]:
    """Windows, right to left, that add ``num_new = 1 + tf*m`` frames before given frames."""
    if num_new < 1 or (tf > 1 and num_new % tf != 1):
        raise TenkuError(f"cannot add {num_new} frames before a video: this needs 1 + {tf}*k frames")
    gmax = window - tail
    if gmax < 1:
        raise TenkuError(f"a window of {window} latent frames cannot hold {tail} given frames and new ones")
    wins: list[Window] = []
    remaining = num_new
    while remaining > 0:
        if remaining <= 1 + tf * (gmax - 1):
            wins.append(Window(0, (remaining - 1) // tf + 1, tail))
            break
        if gmax < 2:
            raise TenkuError(f"a window of {window} latent frames is too short to extend backward by "
                             f"{num_new} frames; use a model with a longer window")
        wins.append(Window(0, gmax, tail, drop_first=True))
        remaining -= tf * (gmax - 1)
    return wins


class WindowRunner:
    """Samples and decodes windows for one generation: text conditioning, the request and the noise generator.
    The request's explicit ``latents``, when given, are the first window's noise."""

    def __init__(self, pipe, cond, uncond, request, generator: torch.Generator, num_windows: int,
                 callback: Callable[[dict], None] | None = None, progress: bool = True,
                 on_window: Callable[[dict], None] | None = None):
        self.pipe, self.cond, self.uncond, self.request, self.gen = pipe, cond, uncond, request, generator
        self.sample_config = request.sample
        self.guidance_interval = request.guidance_interval
        self.match_seams = bool(request.match_seams)
        self.tf = pipe.geometry.temporal_factor
        self.num_windows = max(1, num_windows)
        self.index = 0
        self.last: torch.Tensor | None = None
        self.callback, self.on_window = callback, on_window
        self.progress = progress_enabled(progress)  # one bar over all windows
        self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def latent_shape(self, size: int) -> tuple[int, int, int, int, int]:
        sc = self.sample_config
        return (1, *self.pipe.geometry.latent_shape(1 + self.tf * (size - 1), sc.height, sc.width))

    def encode_head(self, frames: np.ndarray, k: int) -> torch.Tensor:
        """The last ``1 + tf*(k-1)`` frames as the start of a clip -> (1, C, k, h, w)."""
        c = 1 + self.tf * (k - 1)
        return self.pipe.encode_frames(frames[-c:])

    def encode_tail(self, frames: np.ndarray, k: int) -> torch.Tensor:
        """The first ``tf*k`` frames as the end of a clip (behind one copy of their first frame) -> (1, C, k, h, w)."""
        given = pad_frames(frames, self.tf * k)[: self.tf * k]
        return self.pipe.encode_frames(np.concatenate([given[:1], given]))[:, :, 1:]

    def _step(self, d: dict) -> None:
        if self.bar is None and self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.num_windows * d["total"], desc="denoising", unit="step", leave=False)
        if self.bar is not None:
            self.bar.update(1)
        if self.callback is not None:
            d = dict(d, window=self.index, windows=self.num_windows, i=self.index * d["total"] + d["i"],
                     total=self.num_windows * d["total"])
            self.callback(d)

    def sample(self, size: int, cond: Conditioning) -> torch.Tensor:
        """Sample one window of ``size`` latent frames; noise comes from the shared generator."""
        shape = self.latent_shape(size)
        given = self.request.latents if self.index == 0 else None
        if given is not None:
            if tuple(given.shape) != shape:
                sc = self.sample_config
                raise TenkuError(f"latents must have shape {shape} for {sc.num_frames} frames at "
                                 f"{sc.width}x{sc.height}, got {tuple(given.shape)}")
            noise = given.float()
        else:
            noise = torch.randn(shape, generator=self.gen, device=self.gen.device, dtype=torch.float32)
        if cond.strength is not None and cond.strength <= 0.0:
            z = cond.init_latents.clone()
            if cond.cond_mask is not None:
                z[:, :, cond.cond_mask] = cond.cond_latents[:, :, cond.cond_mask]
        else:
            z = self.pipe.denoise(self.cond, self.uncond, noise, self.sample_config, callback=self._step,
                                  progress=False, cond_latents=cond.cond_latents, cond_mask=cond.cond_mask,
                                  init_latents=cond.init_latents, strength=cond.strength,
                                  guidance_interval=self.guidance_interval)
        z = z.float().cpu()
        self.last = z
        if self.on_window is not None:
            self.on_window({"index": self.index, "latents": z, "cond_latents": cond.cond_latents,
                            "cond_mask": cond.cond_mask})
        self.index += 1
        return z

    def window(self, w: Window, before: np.ndarray | None, after: np.ndarray | None) -> torch.Tensor:
        """Build the conditioning of window ``w`` from the frames before/after and sample it."""
        shape = self.latent_shape(w.size)
        cond = torch.zeros(shape)
        mask = torch.zeros(w.size, dtype=torch.bool)
        if w.head:
            cond[:, :, : w.head] = self.encode_head(before, w.head)
            mask[: w.head] = True
        if w.tail:
            cond[:, :, w.size - w.tail:] = self.encode_tail(after, w.tail)
            mask[w.size - w.tail:] = True
        if not mask.any():
            return self.sample(w.size, Conditioning())
        return self.sample(w.size, Conditioning(cond, mask))

    def decode(self, z: torch.Tensor, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Decode latents in time chunks, yielding frames [start, stop) as (t, H, W, 3) uint8 pieces."""
        yield from decode_frames(self.pipe, z, start, stop)

    def decode_matched(self, z: torch.Tensor, start: int, stop: int, head: tuple[int, np.ndarray] | None,
                       tail: tuple[int, np.ndarray] | None) -> np.ndarray:
        """Frames [start, stop) of window ``z``, matched to the given frames around it (see :func:`match_seams`;
        ``head``/``tail``: (index in the decoded window, the given frame it stands for))."""
        if not self.match_seams or (head is None and tail is None):
            return np.concatenate(list(self.decode(z, start, stop)))
        frames = np.concatenate(list(self.decode(z, 0, None if tail is None else max(stop, tail[0] + 1))))
        return match_seams(frames, head, tail, fade=2 * self.tf)[start:stop]


def match_seams(frames: np.ndarray, head: tuple[int, np.ndarray] | None, tail: tuple[int, np.ndarray] | None,
                fade: int) -> np.ndarray:
    """Correct decoded frames (T, H, W, 3) uint8 so they meet given frames without a jump. ``head`` = (i, f):
    decoded frame ``i`` stands for the given frame ``f`` before the new ones; ``tail`` likewise for the
    given frame after them. The residual r = f - frames[i] splits into its per-channel median (the VAE's
    colour shift: added to every frame, interpolated in time between head and tail) and the rest (detail
    and local colour: added with a weight that falls linearly from 1 at frame i to 0 at ``fade + 1``
    frames away). Frame i itself comes out equal to f."""
    out = frames.astype(np.float32)
    j = np.arange(len(out), dtype=np.float32)
    anchors = []
    for side, anchor in (("head", head), ("tail", tail)):
        if anchor is None:
            continue
        i, given = anchor
        r = given.astype(np.float32) - out[i]  # (H, W, 3)
        med = np.median(r.reshape(-1, 3), axis=0)  # (3,)
        dist = (j - i) if side == "head" else (i - j)
        w = np.clip(1.0 - dist / (fade + 1), 0.0, 1.0) * (dist >= 0)  # (T,)
        out += w[:, None, None, None] * (r - med)
        anchors.append((i, med))
    (i0, m0), (i1, m1) = anchors[0], anchors[-1]  # one anchor: the same twice
    s = np.clip((j - i0) / max(i1 - i0, 1), 0.0, 1.0)[:, None]  # 0 at the head, 1 at the tail
    out += ((1 - s) * m0 + s * m1)[:, None, None, :]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def decode_frames(pipe, z: torch.Tensor, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Latents (1, C, T', h, w) -> uint8 frame pieces (t, H, W, 3) for frames [start, stop), in time order,
    decoded ``pipe.decode_chunk`` latent frames at a time."""
    p = next(pipe.vae.parameters())
    pos = 0
    for video in pipe.vae.decode_iter(z.to(device=p.device, dtype=p.dtype), chunk_size=max(1, pipe.decode_chunk)):
        n = video.shape[2]
        lo, hi = max(start - pos, 0), n if stop is None else min(stop - pos, n)
        pos += n
        if hi > lo:
            yield tensor_to_frames(video[0, :, lo:hi])  # (t, H, W, 3)
        if stop is not None and pos >= stop:
            return


def pad_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """At least ``n`` frames: repeat the last frame if there are fewer (a still continuation)."""
    if len(frames) >= n:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


class Context:
    """The last ``keep`` frames seen so far (the head context of the next window)."""

    def __init__(self, keep: int, frames: np.ndarray | None = None):
        self.keep = keep
        self.frames = None if frames is None or not len(frames) else frames[-keep:].copy()

    def push(self, piece: np.ndarray) -> None:
        self.frames = piece[-self.keep:].copy() if self.frames is None else \
            np.concatenate([self.frames, piece])[-self.keep:]

    def __len__(self) -> int:
        return 0 if self.frames is None else len(self.frames)


def stream_forward(runner: WindowRunner, schedule: list[Window], head: np.ndarray | None,
                   tail: np.ndarray | None, context: int, tail_from_start: bool = False,
                   keep_first_context: bool = False) -> Iterator[np.ndarray]:
    """Yield the new frames of a forward schedule piece by piece. ``head``: frames before (only the last
    ``1 + tf*(context-1)`` are used); ``tail``: frames after (the first ``tf*k2``), or with
    ``tail_from_start`` the first frames this stream makes. ``keep_first_context``: also yield the decoded
    head frames of the first window (image-to-video shows the decoded image as frame 0)."""
    tf = runner.tf
    ctx = Context(1 + tf * (context - 1), head)
    start: list[np.ndarray] = []
    start_need = tf * max((w.tail for w in schedule), default=0)
    for j, w in enumerate(schedule):
        if tail_from_start and w.tail:
            tail = np.concatenate(start)
        z = runner.window(w, ctx.frames, tail)
        F = 1 + tf * (w.size - 1)
        c = 1 + tf * (w.head - 1) if w.head else 0  # decoded head context frames
        lo = 0 if (j == 0 and keep_first_context) else c
        hi = F - tf * w.tail
        piece = runner.decode_matched(z, lo, hi, (c - 1, ctx.frames[-1]) if w.head else None,
                                      (hi, tail[0]) if w.tail else None)
        del z
        ctx.push(piece)
        if tail_from_start and sum(len(s) for s in start) < start_need:
            start.append(piece)
        yield piece


def stream_backward(runner: WindowRunner, schedule: list[Window], tail: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the new frames of a backward schedule in time order (they are made right to left, so they
    are held until the leftmost window is done)."""
    tf = runner.tf
    pieces: list[np.ndarray] = []
    right = tail[: tf * max(w.tail for w in schedule)]
    for w in schedule:
        z = runner.window(w, None, right)
        F = 1 + tf * (w.size - 1)
        new = runner.decode_matched(z, int(w.drop_first), F - tf * w.tail, None, (F - tf * w.tail, right[0]))
        pieces.append(new)
        right = np.concatenate([new, right])[: tf * w.tail]
    for piece in reversed(pieces):
        yield piece


def stream_edit(runner: WindowRunner, z0: torch.Tensor, window: int, context: int,
                strength: float) -> Iterator[np.ndarray]:
    """SDEdit over a whole latent video ``z0`` (1, C, T', h, w) in windows: each window starts from ``z0``
    noised to ``t = strength``; windows after the first hold their first ``context`` latent frames at the
    already edited values (one latent sequence, so the edit is continuous). The edited latents (small)
    are kept and decoded in time chunks at the end."""
    T = z0.shape[2]
    edited = z0.clone()
    s = 0
    while s < T:
        k = 0 if s == 0 else min(context, s)
        lo = s - k
        hi = min(lo + window, T)
        init = z0[:, :, lo:hi].clone()
        mask = torch.zeros(hi - lo, dtype=torch.bool)
        mask[:k] = True
        cond = Conditioning(edited[:, :, lo:hi].clone() if k else None, mask if k else None, init, strength)
        z = runner.sample(hi - lo, cond)
        edited[:, :, lo:hi] = z
        s = hi
    yield from runner.decode(edited)


def edit_windows(T: int, window: int, context: int) -> int:
    """How many windows :func:`stream_edit` uses for ``T`` latent frames."""
    n, s = 0, 0
    while s < T:
        k = 0 if s == 0 else min(context, s)
        s = min(s - k + window, T)
        n += 1
    return n
