"""Invisible watermark ``tenku-ss-v3``: a 32-bit payload (+ 8 CRC bits + a pilot bit) spread over a mid band
of luma, alternating in sign every 8 frames, moving with the camera.

Design (measured in benchmarks/watermark_robustness.py; see docs/safety.md):

- A 64x64 periodic pattern, tiled over frames of any size, is the sum of ``K = 41`` orthogonal
  groups of Fourier bins in the band 2.5 <= radius <= 12 cycles per tile; each group carries one
  code bit as its sign, with fixed random phases from ``key``; the last group (the pilot) is always +.
  Frames smaller than the tile get the tile shrunk to fit; the detector resamples them back to the tile's
  size (``_fit_size``) as one of its pre-registered sizes.
- Temporal code: the pattern is added to frames 0-7 with sign +, 8-15 with sign -, and so on
  (``temporal_code``; ``start`` continues it over a video marked piece by piece). The detector takes
  half the difference of the mean + frames and the mean - frames, so whatever stays still in the picture
  (a textured floor) cancels at any scale or crop, and the mark adds up. In a trimmed piece the code's
  offset is unknown (it is searched) and so is its sign: the pilot tells it.
- Camera motion: where most of the picture moves, the embedder fits a constant velocity to the phase
  correlation of frames 1, 2, 4 and 8 apart and moves the mark with the picture, so a video codec predicts
  it from the previous frame instead of coding it (and, at CRF 28, quantising it away) as residual. The
  detector fits the motion of the suspect frames the same way and shifts each frame's folded residual back.
- Headroom: where a pixel is light (luma 215..235 and above) the mark fades from the symmetric
  pattern to a one-sided one, ``-|min(pattern, 0)| ** 1.5`` at the same RMS, so that after a +10%
  brightness change (which clips light floors at 255) the darker dots still carry the payload.
- Informed embedding: the embedder runs the detector on the content and scales each group so that
  every bit reads back with the same margin, with the whole mark kept at RMS ``strength`` (2.4 levels:
  PSNR ~40.5 dB).
- Detection, blind: for each code offset tried, the coded mean luma of up to ``max_frames`` frames is
  resampled (Lanczos) for each scale of a grid (0.45x to 2.2x in 10% steps, refined between steps near
  the two best; for frames up to 64 px every whole-pixel size for 0.7x..1.5x, since the peak is about one
  pixel wide), an edge-preserving residual is taken (minus a 9x9 median, clipped to +-3), folded onto the
  64x64 tile, pre-whitened (each Fourier bin divided by the local mean power around it plus a floor) and
  correlated with all groups at every cyclic shift by FFT (this searches crop offsets). The statistic is
  the sum over groups of |correlation| / its spread over shifts, as a z-score. Offsets 0, 3 and 5 are
  searched in full (every offset is within a frame of one), then all 8 at the best size. The best
  hypothesis, and separately the pre-registered "unmoved", "0.5x downscale" and (frames under 64 px) "tile
  fitted" sizes at offset 0 and shift 0, are decoded: the pilot's sign sets the polarity, then hard decisions; a word that fails its CRC gets
  the one bit its syndrome names flipped only at z >= ``Z_CORRECT`` and only when that bit reads weaker
  than the median bit.
- A mark is reported when the CRC matches and the false-alarm bound
  ``p_value = hypotheses * Q(z) * (words that could have matched) / 256`` is at most ``P_FALSE``.
- Read-back (``reads_back``, what the writer runs on every output): a mark just embedded sits at offset 0,
  shift 0 and a pre-registered size, so for a still camera those few hypotheses alone decide whether the
  blind detector reads it (they are its second candidate); a moving camera, and frames too large for those
  sizes, get the full search.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TILE = 64
PAYLOAD_BITS = 32
CRC_BITS = 8
PILOT = PAYLOAD_BITS + CRC_BITS  # the last group carries a known +1: it tells a read's polarity (the temporal
# code's sign is unknown in a trimmed piece), so a word is never decoded inverted
K = PAYLOAD_BITS + CRC_BITS + 1
BAND = (2.5, 12.0)
DEFAULT_KEY = 0x7E4C_0001
STRENGTH = 2.4  # RMS of the mark in 8-bit levels
STILL_BOOST = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0)  # mark strength steps, up to 5x (RMS 12 levels),
# tried in order until the frame reads back (docs/safety.md: single frames)
CLIP = 3.0  # residual limiter (levels)
WIENER_R = 2  # pre-whitening: local mean power over (2r+1)^2 Fourier bins
WIENER_FLOOR = 0.5  # ... plus this times its median over the band
LIGHT_LO, LIGHT_HI = 215.0, 235.0  # luma range over which the mark turns one-sided (negative only)
LIGHT_POWER = 1.5  # the one-sided mark is |min(mark, 0)| ** 1.5 (same RMS): fewer, deeper dots, more of which stay
# below 255 after +10% brightness
MEDIAN = 9  # residual window (pixels at tile scale)
P_FALSE = 1e-7  # false-alarm bound a detection must meet (hypotheses * Q(z) * CRC candidates / 256)
SCALES = tuple(sorted({round(float(s), 4) for s in np.exp(np.arange(np.log(0.45), np.log(2.25), np.log(1.1)))}
                     | {0.5, 0.625, 0.8, 1.0, 1.25, 1.6, 2.0}))
Z_CORRECT = 9.0  # a word that fails its CRC gets the one bit its syndrome names flipped (the CRC has minimum
# distance 4: one error is always found) only at this z or above, and only when that bit reads weaker than the
# median bit; below, and for a strong bit (the sign of 3 or more errors), it is rejected: a wrong payload is worse
# than none
PRIVILEGED = (1.0, 0.5)  # scales tried at shift 0 as their own, small hypothesis set
REFINE_STEPS = (-2, -1, 1, 2)  # quarter steps of the 1.1x scale grid tried around the two best scales
DENSE = (0.7, 1.5, 64)  # frames up to 64 px (short side): every whole-pixel size for scales 0.7..1.5
MAX_PIXELS = 400_000  # skip a scale hypothesis whose resampled frame would be larger (the unresampled size is
# always tried)
BLOCK = 8  # frames per sign of the temporal code: the mark is +pattern for 8 frames, then -pattern for 8, ...
FIRST_OFFSETS = (0, 3, 5)  # code offsets searched in full; every offset is within one frame of one of them
MOVING = 0.3  # camera motion: this fraction of the pixels changes by more than 3 levels from frame to frame
MOVING_FRAMES, MOVING_PIXELS = 24, 65_536  # the registered search looks at up to 24 frames of up to 256x256 pixels


@lru_cache(maxsize=4)
def patterns(key: int = DEFAULT_KEY) -> np.ndarray:
    """(K, TILE, TILE) float64 orthogonal band-limited patterns, unit std each."""
    rng = np.random.default_rng(key)
    fy = np.fft.fftfreq(TILE) * TILE
    fx = np.fft.rfftfreq(TILE) * TILE
    radius = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    mask = (radius >= BAND[0]) & (radius <= BAND[1]) & ~((fx[None, :] == 0) & (fy[:, None] <= 0))
    idx = np.argwhere(mask)
    rng.shuffle(idx)
    out = np.empty((K, TILE, TILE))
    for g in range(K):
        sel = idx[g::K]
        spec = np.zeros((TILE, TILE // 2 + 1), complex)
        spec[sel[:, 0], sel[:, 1]] = np.exp(1j * rng.uniform(0, 2 * np.pi, len(sel)))
        p = np.fft.irfft2(spec, s=(TILE, TILE))
        out[g] = p / p.std()
    out.setflags(write=False)
    return out


def crc8(value: int) -> int:
    """CRC-8 (polynomial 0x07) of a 32-bit value."""
    crc = 0
    for byte in value.to_bytes(4, "big"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def make_payload(model: str, job_id: str) -> int:
    """32 bits: 8 bits of a hash of the model name, 24 bits of a hash of the job/file id."""
    m = hashlib.sha256(model.encode()).digest()[0]
    j = int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:3], "big")
    return (m << 24) | j


def _code_bits(payload: int) -> np.ndarray:
    """The K code bits: 32 payload bits, their CRC-8, the pilot (always 1)."""
    if not 0 <= int(payload) < 2**PAYLOAD_BITS:
        raise ValueError(f"watermark payload must be an unsigned {PAYLOAD_BITS}-bit integer, got {payload}")
    word = (int(payload) << CRC_BITS) | crc8(int(payload))
    return np.array([(word >> (PILOT - 1 - i)) & 1 for i in range(PILOT)] + [1], bool)


def _bits_to_payload(bits: np.ndarray) -> tuple[int, bool]:
    word = 0
    for b in bits[:PILOT]:
        word = (word << 1) | int(b)
    payload = word >> CRC_BITS
    return payload, crc8(payload) == (word & 0xFF)


@lru_cache(maxsize=1)
def _single_error_syndromes() -> dict:
    """{CRC syndrome: the bit position whose error gives it} (the CRC is linear, so a syndrome names one error)."""
    table = {}
    for i in range(PILOT):
        word = 1 << (PILOT - 1 - i)
        table[crc8(word >> CRC_BITS) ^ (word & 0xFF)] = i
    return table


def _decode(corr: np.ndarray, reliability: np.ndarray, z: float) -> tuple[int, bool, int]:
    """(K,) correlations at a hypothesis -> (payload, crc_ok, bits corrected). The pilot's sign sets the polarity;
    hard decisions; if the CRC fails, at ``z >= Z_CORRECT`` the bit that the syndrome names is flipped when it is
    weaker than the median bit."""
    polarity = 1.0 if corr[PILOT] >= 0 else -1.0
    hard = corr[:PILOT] * polarity > 0
    payload, ok = _bits_to_payload(hard)
    if ok or z < Z_CORRECT:
        return payload, ok, 0
    word = int("".join("1" if b else "0" for b in hard), 2)
    pos = _single_error_syndromes().get(crc8(word >> CRC_BITS) ^ (word & 0xFF))
    if pos is None or reliability[pos] > np.median(reliability[:PILOT]):
        return payload, False, 0
    hard[pos] ^= True
    fixed, ok = _bits_to_payload(hard)
    return (fixed, True, 1) if ok else (payload, False, 0)


def _luma(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def _residual(y: np.ndarray) -> np.ndarray:
    """Edge-preserving residual of one (H, W) luma image: minus a median, clipped."""
    from numpy.lib.stride_tricks import sliding_window_view

    p = MEDIAN // 2
    yp = np.pad(y, p, mode="reflect")
    win = sliding_window_view(yp, (MEDIAN, MEDIAN)).reshape(*y.shape, -1)
    med = np.partition(win, MEDIAN * MEDIAN // 2, axis=-1)[..., MEDIAN * MEDIAN // 2]
    return np.clip(y - med, -CLIP, CLIP)


def _fit_size(h: int, w: int) -> tuple[int, int]:
    """(h, w) for frames at least a tile on their short side; smaller frames: the size at which the tile fits
    them, the embedder's tile is shrunk by (and the detector resamples them back to)."""
    shrink = min(1.0, min(h, w) / TILE)
    return round(h / shrink), round(w / shrink)


def _privileged_sizes(h0: int, w0: int) -> list[tuple[int, int]]:
    """The pre-registered sizes of an (h0, w0) suspect: unmoved, 0.5x downscale, and the tile fitted."""
    sizes = [(round(h0 / s), round(w0 / s)) for s in PRIVILEGED]
    fit = _fit_size(h0, w0)
    return sizes if fit in sizes else [*sizes, fit]


def _fold(r: np.ndarray) -> np.ndarray:
    """Average an (H, W) image onto the (TILE, TILE) torus (tile (i, j) of the frame starts at 0)."""
    h, w = r.shape
    hh, ww = -(-h // TILE) * TILE, -(-w // TILE) * TILE
    acc = np.zeros((hh, ww))
    cnt = np.zeros((hh, ww))
    acc[:h, :w] = r
    cnt[:h, :w] = 1
    acc = acc.reshape(hh // TILE, TILE, ww // TILE, TILE).sum((0, 2))
    cnt = cnt.reshape(hh // TILE, TILE, ww // TILE, TILE).sum((0, 2))
    return acc / np.maximum(cnt, 1)


@lru_cache(maxsize=1)
def _band_mask() -> np.ndarray:
    fy = np.fft.fftfreq(TILE) * TILE
    fx = np.fft.rfftfreq(TILE) * TILE
    radius = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    return (radius >= BAND[0]) & (radius <= BAND[1])


@lru_cache(maxsize=4)
def _pattern_spectra(key: int) -> np.ndarray:
    """(K, TILE, TILE // 2 + 1) conjugate spectra of the patterns."""
    return np.conj(np.fft.rfft2(patterns(key)))


def _correlations(folded: np.ndarray, key: int) -> np.ndarray:
    """(K, TILE, TILE): correlation of the pre-whitened folded residual with each group at every cyclic
    shift. Pre-whitening divides each bin by the local mean power around it (plus a floor), so strong
    periodic or textured content (checkerboard, stone floors) weighs no more than the mark."""
    power = np.abs(np.fft.fft2(folded)) ** 2
    r = WIENER_R
    rows = sum(np.roll(power, d, 0) for d in range(-r, r + 1))
    local = sum(np.roll(rows, d, 1) for d in range(-r, r + 1))[:, : TILE // 2 + 1] / (2 * r + 1) ** 2
    spec = np.fft.rfft2(folded) / (local + WIENER_FLOOR * np.median(local[_band_mask()]) + 1e-12)
    return np.fft.irfft2(spec[None] * _pattern_spectra(key), s=(TILE, TILE))


def _tiled(w: np.ndarray, h: int, wd: int) -> np.ndarray:
    reps = (-(-h // TILE), -(-wd // TILE))
    return np.tile(w, reps)[:h, :wd]


def temporal_code(index: np.ndarray, offset: int = 0) -> np.ndarray:
    """The mark's sign (+-1) for each frame index: blocks of ``BLOCK`` frames, alternating, from +1."""
    return np.where(((np.asarray(index) + offset) // BLOCK) % 2 == 0, 1.0, -1.0)


def _coded_mean(lum: np.ndarray, index: np.ndarray, offset: int = 0) -> np.ndarray:
    """(T, H, W) luma -> (H, W): half the difference of the mean + frames and the mean - frames of the code at
    ``offset``, so whatever stays still in the picture (a textured floor) cancels and the mark adds up. A
    window inside one block gives its mean, with the block's sign."""
    c = temporal_code(index, offset)
    if (c > 0).all() or (c < 0).all():
        return lum.mean(0) * c[0]
    return (lum[c > 0].mean(0) - lum[c < 0].mean(0)) / 2


def _velocity(lum: np.ndarray, index: np.ndarray) -> np.ndarray | None:
    """(T, H, W) luma of the frames at ``index`` -> (dy, dx) pixels per frame the picture moves, or None for a still
    camera (most of the picture does not change, or it moves less than a pixel in all). The phase correlation of
    frames 1, 2, 4 and 8 apart (sub-pixel by a parabola through the peak) is fitted by a constant velocity, so the
    embedder and the detector, each from its own frames, agree on it; the picture in frame n has moved by
    n * velocity (n counted from the video's first frame, so pieces marked one by one agree too)."""
    step = max(1, min(lum.shape[1:]) // 128)  # large frames: measured on 2x2, 3x3, ... block means
    if step > 1:
        t, h, w = lum.shape
        lum = lum[:, : h // step * step, : w // step * step].reshape(t, h // step, step, w // step, step).mean((2, 4))
    t, h, w = lum.shape
    if t < 2 or (np.abs(np.diff(lum, axis=0)) > 3).mean() < MOVING:
        return None
    f = np.fft.fft2((lum - lum.mean((1, 2), keepdims=True)) * np.outer(np.hanning(h), np.hanning(w)))

    def vertex(a: float, b: float, c: float) -> float:  # sub-pixel peak: a parabola through it and its neighbours
        d = a - 2 * b + c
        return 0.5 * (a - c) / d if d < 0 else 0.0

    pairs = []  # (t0, t1, dy, dx)
    for lag in (1, 2, 4, 8):
        for k in range(t - lag):
            cross = f[k + lag] * np.conj(f[k])
            r = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real
            i, j = np.unravel_index(int(r.argmax()), r.shape)
            dy = i + vertex(r[i - 1, j], r[i, j], r[(i + 1) % h, j])
            dx = j + vertex(r[i, j - 1], r[i, j], r[i, (j + 1) % w])
            pairs.append((index[k], index[k + lag], (dy + h / 2) % h - h / 2, (dx + w / 2) % w - w / 2))
    pairs = np.array(pairs)
    basis = (pairs[:, 1] - pairs[:, 0])[:, None]  # frames apart: a constant velocity
    keep = np.abs(pairs[:, 2:]).max(1) < min(h, w) / 3  # pairs that still overlap well
    if keep.sum() < 2:
        return None
    coef = np.median(pairs[keep, 2:] / basis[keep], axis=0, keepdims=True)  # robust start, then least squares on
    for _ in range(2):  # the pairs within 1.5 px of the path (a periodic floor can put a peak a period away)
        keep &= np.abs(basis @ coef - pairs[:, 2:]).max(1) < 1.5
        if keep.sum() < 2:
            return None
        coef = np.linalg.lstsq(basis[keep], pairs[keep, 2:], rcond=None)[0]
    velocity = coef[0] * step
    return velocity if np.abs(velocity).max() * (index[-1] - index[0]) >= 1.0 else None


def _moved(index: np.ndarray, velocity: np.ndarray | None) -> np.ndarray | None:
    """(T, 2) displacement of the picture in the frames at ``index``, or None for a still camera."""
    return None if velocity is None else index[:, None] * velocity[None]


def _few(t: int) -> np.ndarray:
    """Up to ``MOVING_FRAMES`` of t frames, evenly spread (the registered correlation's frames)."""
    return np.linspace(0, t - 1, min(t, MOVING_FRAMES)).round().astype(int)


def _shift_tiles(tiles: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Periodic (TILE, TILE) image(s) shifted by each (dy, dx) of ``moved`` (T, 2), in tile pixels: (T, TILE, TILE)."""
    fy = np.fft.fftfreq(TILE)[None, :, None]
    fx = np.fft.rfftfreq(TILE)[None, None, :]
    ramp = np.exp(-2j * np.pi * (fy * moved[:, 0, None, None] + fx * moved[:, 1, None, None]))
    return np.fft.irfft2(np.fft.rfft2(tiles) * ramp, s=(TILE, TILE))


def _registered(lum: np.ndarray, moved: np.ndarray, h: int, w: int) -> np.ndarray:
    """(T, H, W) luma frames resized to (h, w), their residuals folded onto the tile and shifted back by the motion:
    (T, TILE, TILE), where a mark that moved with the picture lines up again."""
    folded = np.stack([_fold(_residual(_resize(f, h, w))) for f in lum])
    return _shift_tiles(folded, -moved * (h / lum.shape[1]))


def embed(frames: np.ndarray, payload: int, key: int = DEFAULT_KEY, strength: float = STRENGTH,
          start: int = 0, still_boost: bool = True) -> np.ndarray:
    """Return a marked copy of frames (T, H, W, 3) uint8 (or one (H, W, 3) frame). ``start`` is the index of
    the first frame in the whole video, for a video marked piece by piece.

    A still image (one frame at ``start`` 0) has no temporal code to cancel a textured floor, so its mark is
    read back from the marked frame itself and made stronger (``STILL_BOOST`` steps) until it reads; textured
    floors, the images that need it, also hide it best. A frame on which no step reads keeps the plain mark.
    ``still_boost=False`` keeps the plain mark on stills too (for measurements of what the boost buys)."""
    single = frames.ndim == 3
    video = frames[None] if single else frames
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {video.dtype} {video.shape}")
    if still_boost and len(video) == 1 and start == 0:
        out = _boosted(video, payload, key, strength, start, lambda x: reads_back(x, payload, key=key))[0]
    else:
        out = _embed(video, payload, key, strength, start)
    return out[0] if single else out


def embed_read_back(frames: np.ndarray, payload: int, key: int = DEFAULT_KEY, strength: float = STRENGTH,
                    roundtrip=None) -> tuple[np.ndarray, float]:
    """Mark the first frames of a video (start 0) and read them back, making the mark stronger
    (``STILL_BOOST`` steps) until it reads; returns (marked frames, the strength used), so the rest of the
    video is marked at the same strength. ``roundtrip``: frames -> frames as the output will store them
    (e.g. through the video codec), read back instead of the marked frames themselves. Busy, high-contrast
    frames can hide a plain mark (measured on the default model's blocky clips: 3 of 6 seeds unreadable
    after encoding). When no step reads, the plain mark is kept."""
    video = frames if frames.ndim == 4 else frames[None]

    def reads(out: np.ndarray) -> bool:  # as marked first (cheap): a mark that does not read there will not after
        return reads_back(out, payload, key=key) and (roundtrip is None or reads_back(roundtrip(out), payload, key=key))

    return _boosted(video, payload, key, strength, 0, reads)


def _boosted(video: np.ndarray, payload: int, key: int, strength: float, start: int,
             reads) -> tuple[np.ndarray, float]:
    """The weakest ``STILL_BOOST`` step of the mark for which ``reads(marked)`` holds: (marked, its strength);
    (the plain mark, ``strength``) when none does. The strongest step is tried right after the
    plain one, as marked: when even it does not read (a frame of noise), no step will, and the rest are skipped."""
    plain = _embed(video, payload, key, strength, start)
    if reads(plain):
        return plain, strength
    strongest = _embed(video, payload, key, strength * STILL_BOOST[-1], start)
    if not reads_back(strongest, payload, key=key):
        return plain, strength
    for boost in STILL_BOOST[1:]:
        out = strongest if boost == STILL_BOOST[-1] else _embed(video, payload, key, strength * boost, start)
        if reads(out):
            return out, strength * boost
    return plain, strength


def _embed(video: np.ndarray, payload: int, key: int, strength: float, start: int) -> np.ndarray:
    """The mark at RMS ``strength`` on (T, H, W, 3) uint8 frames (see :func:`embed`)."""
    t, h, w, _ = video.shape
    signs = np.where(_code_bits(payload), 1.0, -1.0)
    pats = patterns(key)
    base = video.astype(np.float32)
    lum = _luma(video)
    gains = np.ones(K)
    out = video
    # frames smaller than the tile get the tile shrunk to fit (the detector resamples them to _fit_size)
    shrink = min(1.0, min(h, w) / TILE)
    th, tw = _fit_size(h, w)
    # headroom: 1 = symmetric mark, 0 = negative half only (light pixels that +10% brightness clips)
    sym = np.clip((LIGHT_HI - lum) / (LIGHT_HI - LIGHT_LO), 0.0, 1.0)  # (T, H, W)
    index = np.arange(start, start + t)
    code = temporal_code(index)[:, None, None]  # (T, 1, 1)
    moved = _moved(index, _velocity(lum, index))  # a moving camera: the mark moves with the picture (a codec
    # then predicts it)
    for it in range(4):
        tile = np.tensordot(signs * gains, pats, axes=1)
        tiles = tile[None] if moved is None else _shift_tiles(tile, moved / shrink)
        mark = np.stack([_tiled(x, th, tw) if shrink == 1.0 else _resize(_tiled(x, th, tw), h, w) for x in tiles])
        mark = mark * code  # (T, H, W)
        dark = -np.abs(np.minimum(mark, 0.0)) ** LIGHT_POWER
        dark *= np.sqrt((np.minimum(mark, 0.0) ** 2).mean() / max(float((dark**2).mean()), 1e-12))
        mark = mark * sym + dark * (1.0 - sym)
        mark = mark * (strength / np.sqrt((mark**2).mean()))
        out = np.clip(np.round(base + mark[..., None]), 0, 255).astype(np.uint8)
        if it == 3:
            break
        y = _luma(out)
        if moved is None:
            y = _coded_mean(y, index)
            folded = _fold(_residual(y if shrink == 1.0 else _resize(y, th, tw)))
        else:
            few = _few(t)
            folded = _coded_mean(_registered(y[few], moved[few], th, tw), index[few])
        corr = _correlations(folded, key)[:, 0, 0] * signs
        target = np.median(corr)
        if target <= 0:
            break
        gains = gains * np.clip(target / np.maximum(corr, 1e-3 * target), 0.5, 3.0)
    return out


@dataclass(frozen=True)
class WatermarkResult:
    detected: bool
    payload: int | None  # the decoded 32-bit payload when detected
    z: float  # detection statistic (z-score at the reported hypothesis)
    p_value: float  # bound on the chance of this result on unmarked video (hypotheses, z and CRC candidates)
    crc_ok: bool
    scale: float  # best scale hypothesis (suspect size / original size)
    shift: tuple[int, int]  # best cyclic shift (dy, dx) in tile pixels
    bit_margin: float  # smallest |correlation| / spread over the code bits at the best hypothesis
    corrected_bits: int = 0  # bits flipped by the CRC-guided correction
    raw_payload: int = 0  # what the best hypothesis decodes, even when not detected (for measuring only)

    def to_dict(self) -> dict:
        return {"detected": self.detected, "payload": None if self.payload is None else f"{self.payload:08x}",
                "z": round(self.z, 2), "p_value": self.p_value, "crc_ok": self.crc_ok,
                "scale": round(self.scale, 3), "shift": list(self.shift), "bit_margin": round(self.bit_margin, 2),
                "corrected_bits": self.corrected_bits}


def _resize(y: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(y, dtype=np.float32)).resize((w, h), Image.LANCZOS))


def _search(correlate, h0: int, w0: int, sizes: list | None = None, dense: bool = True,
            max_pixels: int = MAX_PIXELS) -> tuple[dict, dict]:
    """``correlate(h, w)`` -> (K, TILE, TILE) correlations of the suspect resized to (h, w) with the mark, at every
    size of the scale search for an (h0, w0) suspect (or only ``sizes``). Returns ({(h, w): (z, scale, shift,
    corr, norm)} at each size's best shift, the same at shift 0)."""
    done, origin = {}, {}

    def at(h: int, w: int) -> None:
        # the suspect as it is (no resampling) is always looked at, however large: it is where an unscaled
        # output's mark is, and it costs what reading the frame costs
        if (h, w) in done or h < 16 or w < 16 or (h * w > max_pixels and (h, w) != (h0, w0)):
            return
        corr = correlate(h, w)  # (K, TILE, TILE)
        norm = np.abs(corr) / np.maximum(corr.std(axis=(1, 2), keepdims=True), 1e-9)
        stat = (norm.sum(0) - 0.7979 * K) / math.sqrt(0.3634 * K)  # (TILE, TILE) z over shifts
        i = np.unravel_index(int(stat.argmax()), stat.shape)
        done[h, w] = (float(stat[i]), h0 / h, (int(i[0]), int(i[1])), corr[:, i[0], i[1]], norm[:, i[0], i[1]])
        origin[h, w] = (float(stat[0, 0]), h0 / h, (0, 0), corr[:, 0, 0], norm[:, 0, 0])

    if sizes is not None:
        for h, w in sizes:
            at(h, w)
        return done, origin
    for h, w in _privileged_sizes(h0, w0):
        at(h, w)
    if dense and min(h0, w0) <= DENSE[2]:  # the correlation peak is about one pixel wide in size: try every size
        for h in range(round(h0 / DENSE[1]), round(h0 / DENSE[0]) + 1):
            at(h, round(w0 * h / h0))
    scales = [s for s in SCALES if (h0 / s) * (w0 / s) <= max_pixels]
    if not scales:  # a large frame: look at it only at the size that fits
        scales = [math.sqrt(h0 * w0 / max_pixels)]
    for s in scales:
        at(max(16, round(h0 / s)), max(16, round(w0 / s)))
    for h, w in sorted(done, key=lambda k: -done[k][0])[:2]:  # between the grid's 10% steps, near the best
        for f in REFINE_STEPS:
            hh = round(h * 1.1 ** (f / 4))
            hh = hh if hh != h else h + f  # small frames: whole pixels are the finest step
            at(hh, round(w * hh / h))
    return done, origin


def _suspect(frames: np.ndarray, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) or one frame -> ((T', H, W) luma, (T',) frame indices) of up to ``max_frames``
    evenly spread frames."""
    video = frames[None] if frames.ndim == 3 else frames
    index = np.arange(len(video))
    if len(video) > max_frames:
        index = np.linspace(0, len(video) - 1, max_frames).round().astype(int)
        video = video[index]
    return _luma(video), index


def _still_path(lum: np.ndarray, index: np.ndarray, key: int):
    """Code offset -> ``correlate(h, w)`` of the coded mean luma, unregistered (a still camera)."""
    return lambda o: (lambda h, w: _correlations(_fold(_residual(_resize(_coded_mean(lum, index, o), h, w))), key))


def _privileged(origin: dict, h0: int, w0: int) -> list:
    """The pre-registered hypotheses (offset 0, shift 0, the privileged sizes) among ``origin``'s entries."""
    return [origin[k] for k in _privileged_sizes(h0, w0) if k in origin]


def _decide(candidates: list) -> WatermarkResult:
    """The first candidate ((z, scale, shift, corr, norm), hypotheses) whose decoded word passes the CRC and the
    false-alarm bound, else the first one's reading."""
    result = None
    for (z, s, shift, c, n), hyps in candidates:
        payload, crc_ok, corrected = _decode(c, n, z)
        words = 1 + PILOT if z >= Z_CORRECT else 1  # words a random read could have matched the CRC with
        p = min(1.0, hyps * 0.5 * math.erfc(z / math.sqrt(2)) * (words / 2**CRC_BITS if crc_ok else 1.0))
        detected = crc_ok and p <= P_FALSE
        if result is None or detected:
            result = (detected, payload, z, p, crc_ok, s, shift, float(n.min()), corrected if detected else 0)
        if detected:
            break
    detected, payload, z, p, crc_ok, s, shift, margin, corrected = result
    return WatermarkResult(detected, payload if detected else None, z, p, crc_ok, s, shift, margin, corrected,
                           payload)


def detect(frames: np.ndarray, key: int = DEFAULT_KEY, max_frames: int = 48) -> WatermarkResult:
    """Look for the mark in frames (T, H, W, 3) uint8 (or one frame), blind."""
    lum, index = _suspect(frames, max_frames)
    h0, w0 = lum.shape[1:]
    # the code's offset is unknown (a trimmed clip): search three offsets in full, then every offset at the best
    # size; with a moving camera, the same again on frames registered to the first (the mark moved with them)
    offsets = FIRST_OFFSETS if len(lum) > 1 else (0,)
    paths = {"still": _still_path(lum, index, key)}
    moved = _moved(index, _velocity(lum, index))
    if moved is not None:
        few = _few(len(lum))
        stacks = {}  # (h, w) -> registered residual frames, shared by the code offsets

        def registered(h: int, w: int) -> np.ndarray:
            if (h, w) not in stacks:
                stacks[h, w] = _registered(lum[few], moved[few], h, w)
            return stacks[h, w]

        paths["moving"] = lambda o: (lambda h, w: _correlations(_coded_mean(registered(h, w), index[few], o), key))
    found = {(p, o): _search(paths[p](o), h0, w0, dense=p == "still",
                             max_pixels=MAX_PIXELS if p == "still" else MOVING_PIXELS) for p in paths for o in offsets}
    hypotheses = sum(len(done) for done, _ in found.values()) * TILE * TILE
    (p_best, _), (done, _) = max(found.items(), key=lambda kv: max(v[0] for v in kv[1][0].values()))
    size = max(done, key=lambda k: done[k][0])
    searched = done[size]
    if len(lum) > 1:
        for o in range(BLOCK):
            if o not in offsets:
                entry = _search(paths[p_best](o), h0, w0, sizes=[size], max_pixels=size[0] * size[1])[0][size]
                hypotheses += TILE * TILE
                if entry[0] > searched[0]:
                    searched = entry
    candidates = [(searched, hypotheses)]
    privileged = _privileged(found["still", 0][1], h0, w0)  # the code from frame 0, unmoved, no crop
    if privileged:
        candidates.append((max(privileged, key=lambda b: b[0]), len(privileged)))
    return _decide(candidates)


def reads_back(frames: np.ndarray, payload: int, key: int = DEFAULT_KEY, max_frames: int = 48) -> bool:
    """Whether ``payload`` reads from frames marked from start 0 and not resized or cropped since (the writer's
    read-back, after the codec). For a still camera only the pre-registered hypotheses are evaluated: they are
    :func:`detect`'s second candidate, so a read here is a read by ``detect`` too (tens of times faster than its
    search), unless its first candidate, the best of the whole search, passes the CRC and the false-alarm bound
    with another word (a false alarm, bounded by ``P_FALSE``). A read ``detect`` finds only elsewhere in its
    search is not seen here, which costs at most a stronger mark than needed. A moving camera, whose mark moved
    with the picture, and frames too large for those sizes get the full search.
    """
    lum, index = _suspect(frames, max_frames)
    h0, w0 = lum.shape[1:]
    privileged = []
    if _velocity(lum, index) is None:
        origin = _search(_still_path(lum, index, key)(0), h0, w0, sizes=_privileged_sizes(h0, w0))[1]
        privileged = _privileged(origin, h0, w0)
    if privileged:
        r = _decide([(max(privileged, key=lambda b: b[0]), len(privileged))])
    else:  # a moving camera (or frames too small to search): the full search
        r = detect(frames, key=key, max_frames=max_frames)
    return r.detected and r.payload == payload
