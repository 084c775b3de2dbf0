"""Invisible watermark: a 32-bit payload (+ 8 CRC bits) spread over a mid band of luma.

Design (measured in benchmarks/watermark_robustness.py; see docs/safety.md):

- A 64x64 periodic pattern, tiled over frames of any size, is the sum of ``K = 40`` orthogonal
  groups of Fourier bins in the band 2.5 <= radius <= 12 cycles per tile; each group carries one
  code bit as its sign, with fixed random phases from ``key``. The same pattern is added to the luma
  of every frame (so any trimmed piece, and a single PNG, carries the whole payload). Frames
  smaller than the tile get the tile shrunk to fit (the detector's scale search finds it).
- Headroom: where a pixel is light (luma 215..235 and above) the mark fades from the symmetric
  pattern to its negative half only, ``min(pattern, 0)``, so that after a +10% brightness change
  (which clips light floors at 255) the darker dots still carry the payload.
- Informed embedding: the embedder runs the detector on the content and scales each group so that
  every bit reads back with the same margin (the content's own correlation is cancelled), with the
  whole mark kept at RMS ``strength`` (2.4 levels: PSNR ~40.5 dB).
- Detection, blind: the mean luma of up to ``max_frames`` frames is resampled (Lanczos) for each
  scale of a grid (0.45x to 2.2x in 10% steps, refined between steps near the two best; for frames up
  to 64 px every whole-pixel size for 0.7x..1.5x, since the peak is about one pixel wide), an edge-preserving
  residual is taken (minus a 9x9 median, clipped to +-3), folded onto the 64x64 tile, pre-whitened
  (each Fourier bin divided by the local mean power around it plus a floor, a Wiener-like filter that
  keeps checkerboard and stone floors from swamping the correlation), and correlated with all groups
  at every cyclic shift by FFT (this searches crop offsets). The statistic is the sum over groups of
  |correlation| / its spread over shifts, as a z-score. The best (scale, shift) over the search, and
  separately the two pre-registered hypotheses "unmoved" and "0.5x downscale" at shift 0, are
  decoded by hard decisions. (The CRC-guided flip of one weak bit is off, ``MAX_FLIPS = 0``: with 8 CRC
  bits it accepted a wrong payload; the machinery stays for measuring.)
- A mark is reported when the CRC matches and the false-alarm bound
  ``p_value = hypotheses * Q(z) * (CRC candidates tried) / 256`` is at most ``P_FALSE``.
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
K = PAYLOAD_BITS + CRC_BITS
BAND = (2.5, 12.0)
DEFAULT_KEY = 0x7E4C_0001
STRENGTH = 2.4  # RMS of the mark in 8-bit levels
CLIP = 3.0  # residual limiter (levels)
WIENER_R = 2  # pre-whitening: local mean power over (2r+1)^2 Fourier bins
WIENER_FLOOR = 0.5  # ... plus this times its median over the band
LIGHT_LO, LIGHT_HI = 215.0, 235.0  # luma range over which the mark turns one-sided (negative only)
MEDIAN = 9  # residual window (pixels at tile scale)
P_FALSE = 1e-7  # false-alarm bound a detection must meet (hypotheses * Q(z) * CRC candidates / 256)
SCALES = tuple(sorted({round(float(s), 4) for s in np.exp(np.arange(np.log(0.45), np.log(2.25), np.log(1.1)))}
                     | {0.5, 0.625, 0.8, 1.0, 1.25, 1.6, 2.0}))
FLIP_CANDIDATES, MAX_FLIPS = 8, 0  # CRC-guided correction off: with 8 CRC bits, flipping one of the 8 weakest
# bits accepted a wrong payload (a word with 3 errors, docs/safety.md); a wrong payload is worse than none
PRIVILEGED = (1.0, 0.5)  # scales tried at shift 0 as their own, small hypothesis set
REFINE_STEPS = (-2, -1, 1, 2)  # quarter steps of the 1.1x scale grid tried around the two best scales
DENSE = (0.7, 1.5, 64)  # frames up to 64 px (short side): every whole-pixel size for scales 0.7..1.5
MAX_PIXELS = 400_000  # skip a scale hypothesis whose resampled frame would be larger


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
    if not 0 <= int(payload) < 2**PAYLOAD_BITS:
        raise ValueError(f"watermark payload must be an unsigned {PAYLOAD_BITS}-bit integer, got {payload}")
    word = (int(payload) << CRC_BITS) | crc8(int(payload))
    return np.array([(word >> (K - 1 - i)) & 1 for i in range(K)], bool)


def _bits_to_payload(bits: np.ndarray) -> tuple[int, bool]:
    word = 0
    for b in bits:
        word = (word << 1) | int(b)
    payload = word >> CRC_BITS
    return payload, crc8(payload) == (word & 0xFF)


def _decode(corr: np.ndarray, reliability: np.ndarray) -> tuple[int, bool, int, int]:
    """Hard decisions, then (if the CRC fails) flips of up to ``MAX_FLIPS`` of the ``FLIP_CANDIDATES``
    least reliable bits, fewest flips first, until the CRC matches. Returns (payload, crc_ok, bits
    corrected, candidate words a random word would have had to beat: all words with that many flips
    or fewer)."""
    from itertools import combinations

    hard = corr > 0
    payload, ok = _bits_to_payload(hard)
    if ok:
        return payload, True, 0, 1
    weak = np.argsort(reliability)[:FLIP_CANDIDATES]
    tried = 1
    for n in range(1, MAX_FLIPS + 1):
        tried += math.comb(FLIP_CANDIDATES, n)
        for idx in combinations(weak, n):
            bits = hard.copy()
            bits[list(idx)] ^= True
            p, ok = _bits_to_payload(bits)
            if ok:
                return p, True, n, tried
    return payload, False, 0, tried


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


def embed(frames: np.ndarray, payload: int, key: int = DEFAULT_KEY, strength: float = STRENGTH) -> np.ndarray:
    """Return a marked copy of frames (T, H, W, 3) uint8 (or one (H, W, 3) frame)."""
    single = frames.ndim == 3
    video = frames[None] if single else frames
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {video.dtype} {video.shape}")
    t, h, w, _ = video.shape
    signs = np.where(_code_bits(payload), 1.0, -1.0)
    pats = patterns(key)
    base = video.astype(np.float32)
    gains = np.ones(K)
    out = video
    # frames smaller than the tile get the tile shrunk to fit (the detector searches that scale too)
    shrink = min(1.0, min(h, w) / TILE)
    th, tw = round(h / shrink), round(w / shrink)
    # headroom: 1 = symmetric mark, 0 = negative half only (light pixels that +10% brightness clips)
    sym = np.clip((LIGHT_HI - _luma(video)) / (LIGHT_HI - LIGHT_LO), 0.0, 1.0)  # (T, H, W)
    for it in range(4):
        mark = np.tensordot(signs * gains, pats, axes=1)
        mark = _tiled(mark, th, tw)
        if shrink < 1.0:
            mark = _resize(mark, h, w)
        mark = mark[None] * sym + np.minimum(mark, 0.0)[None] * (1.0 - sym)  # (T, H, W)
        mark = mark * (strength / np.sqrt((mark**2).mean()))
        out = np.clip(np.round(base + mark[..., None]), 0, 255).astype(np.uint8)
        if it == 3:
            break
        y = _luma(out).mean(0)
        if shrink < 1.0:
            y = _resize(y, th, tw)
        corr = _correlations(_fold(_residual(y)), key)[:, 0, 0] * signs
        target = np.median(corr)
        if target <= 0:
            break
        gains = gains * np.clip(target / np.maximum(corr, 1e-3 * target), 0.5, 3.0)
    return out[0] if single else out


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


def detect(frames: np.ndarray, key: int = DEFAULT_KEY, max_frames: int = 48) -> WatermarkResult:
    """Look for the mark in frames (T, H, W, 3) uint8 (or one frame), blind."""
    video = frames[None] if frames.ndim == 3 else frames
    if len(video) > max_frames:
        video = video[np.linspace(0, len(video) - 1, max_frames).round().astype(int)]
    y = _luma(video).mean(0)
    h0, w0 = y.shape
    scales = [s for s in SCALES if (h0 / s) * (w0 / s) <= MAX_PIXELS]
    if not scales:  # a large frame: look at it only at the size that fits
        scales = [math.sqrt(h0 * w0 / MAX_PIXELS)]
    done, origin = {}, {}

    def at(h: int, w: int) -> None:
        if (h, w) in done or h < 16 or w < 16 or h * w > MAX_PIXELS:
            return
        corr = _correlations(_fold(_residual(_resize(y, h, w))), key)  # (K, TILE, TILE)
        norm = np.abs(corr) / np.maximum(corr.std(axis=(1, 2), keepdims=True), 1e-9)
        stat = (norm.sum(0) - 0.7979 * K) / math.sqrt(0.3634 * K)  # (TILE, TILE) z over shifts
        i = np.unravel_index(int(stat.argmax()), stat.shape)
        done[h, w] = (float(stat[i]), h0 / h, (int(i[0]), int(i[1])), corr[:, i[0], i[1]], norm[:, i[0], i[1]])
        origin[h, w] = (float(stat[0, 0]), h0 / h, (0, 0), corr[:, 0, 0], norm[:, 0, 0])

    for s in PRIVILEGED:
        at(round(h0 / s), round(w0 / s))
    privileged = [origin[k] for k in list(origin)]
    if min(h0, w0) <= DENSE[2]:  # the correlation peak is about one pixel wide in size: try every size
        for h in range(round(h0 / DENSE[1]), round(h0 / DENSE[0]) + 1):
            at(h, round(w0 * h / h0))
    for s in scales:
        at(max(16, round(h0 / s)), max(16, round(w0 / s)))
    for h, w in sorted(done, key=lambda k: -done[k][0])[:2]:  # between the grid's 10% steps, near the best
        for f in REFINE_STEPS:
            hh = round(h * 1.1 ** (f / 4))
            hh = hh if hh != h else h + f  # small frames: whole pixels are the finest step
            at(hh, round(w * hh / h))
    searched = max(done.values(), key=lambda b: b[0])
    candidates = [(searched, len(done) * TILE * TILE)]
    if privileged:
        candidates.append((max(privileged, key=lambda b: b[0]), len(privileged)))
    result = None
    for (z, s, shift, c, n), hypotheses in candidates:
        payload, crc_ok, corrected, words = _decode(c, n)
        p = min(1.0, hypotheses * 0.5 * math.erfc(z / math.sqrt(2)) * (words / 2**CRC_BITS if crc_ok else 1.0))
        detected = crc_ok and p <= P_FALSE
        if result is None or detected:
            result = (detected, payload, z, p, crc_ok, s, shift, float(n.min()), corrected if detected else 0)
        if detected:
            break
    detected, payload, z, p, crc_ok, s, shift, margin, corrected = result
    return WatermarkResult(detected, payload if detected else None, z, p, crc_ok, s, shift, margin, corrected,
                           payload)


def detect_bits(frames: np.ndarray, key: int = DEFAULT_KEY) -> np.ndarray:
    """The 32 payload bits the best hypothesis decodes (hard decisions, no detection gate): for measuring."""
    r = detect(frames, key)
    return np.array([(r.raw_payload >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
