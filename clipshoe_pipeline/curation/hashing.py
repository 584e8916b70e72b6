"""Perceptual hashes as 64-bit integers, bit-for-bit equal to `imagehash`.

`imagehash` returns Python objects around numpy bool arrays: fine for a few images,
wrong for a Parquet column or a million-row index. Here the same two algorithms
return plain ints, computed from an image already decoded by curation.images:

- pHash (`imagehash.phash`): grayscale, Lanczos resize to 32x32, 2-D DCT-II, the
  top-left 8x8 coefficients, each bit = coefficient > their median.
- dHash (`imagehash.dhash`): grayscale, Lanczos resize to 9x8, each bit = pixel >
  its left neighbour (8 per row).

Bit layout: the 8x8 bit matrix in row-major order, cell (0, 0) in the most
significant bit, cell (7, 7) in the least; i.e. `int(str(imagehash_hash), 16)` is
the unsigned value. It is stored as the two's-complement signed int64 of that value
(`as_int64`), because Parquet and DuckDB have no unsigned 64-bit type everywhere; XOR
and popcount do not care about the sign, so Hamming distances are unaffected.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
import scipy.fft
from PIL import Image

HASH_BITS = 64
_HASH_SIDE = 8
_PHASH_SIDE = _HASH_SIDE * 4  # imagehash's highfreq_factor=4
_UINT64_MASK = (1 << HASH_BITS) - 1
_LANCZOS = Image.Resampling.LANCZOS  # what imagehash calls ANTIALIAS


def phash(image: Image.Image) -> int:
    """imagehash.phash(image) as a signed int64."""
    return _phash_of_grey(_grey(image))


def dhash(image: Image.Image) -> int:
    """imagehash.dhash(image) as a signed int64."""
    return _dhash_of_grey(_grey(image))


def perceptual_hashes(image: Image.Image) -> tuple[int, int]:
    """(phash, dhash) of `image`, converting it to grayscale once."""
    grey = _grey(image)
    return _phash_of_grey(grey), _dhash_of_grey(grey)


def _grey(image: Image.Image) -> Image.Image:
    """`image` in mode L, as imagehash converts it. A grey image is used as it is: the
    curation path hands every hash the one grey copy it made (images.Normalised.grey)."""
    return image if image.mode == "L" else image.convert("L")


def _phash_of_grey(grey: Image.Image) -> int:
    pixels = np.asarray(grey.resize((_PHASH_SIDE, _PHASH_SIDE), _LANCZOS))
    # scipy.fft.dct gives the same floats as imagehash's scipy.fftpack.dct (both pocketfft).
    dct = scipy.fft.dct(scipy.fft.dct(pixels, axis=0), axis=1)
    low = dct[:_HASH_SIDE, :_HASH_SIDE]
    return bits_to_int64(low > np.median(low))


def _dhash_of_grey(grey: Image.Image) -> int:
    pixels = np.asarray(grey.resize((_HASH_SIDE + 1, _HASH_SIDE), _LANCZOS))
    return bits_to_int64(pixels[:, 1:] > pixels[:, :-1])


def bits_to_int64(bits: np.ndarray) -> int:
    """64 booleans, row-major with the first in the most significant bit, as a signed int64."""
    bits = np.asarray(bits, dtype=bool).ravel()
    if bits.size != HASH_BITS:
        raise ValueError(f"expected {HASH_BITS} bits, got {bits.size}")
    return int(np.packbits(bits).view(">i8")[0])


def as_int64(value: int) -> int:
    """An unsigned 64-bit hash (e.g. `int(str(imagehash_hash), 16)`) as the stored int64."""
    value &= _UINT64_MASK
    return value - (1 << HASH_BITS) if value >> (HASH_BITS - 1) else value


def as_uint64(value: int) -> int:
    """A stored int64 hash as its unsigned value (the imagehash hex string's integer)."""
    return value & _UINT64_MASK


def hamming(a: int, b: int) -> int:
    """Differing bits between two hashes, signed or unsigned."""
    return ((a ^ b) & _UINT64_MASK).bit_count()


def popcount(values: np.ndarray | int) -> np.ndarray:
    """Set bits per element of an int64 or uint64 array (uint8 counts)."""
    return np.bitwise_count(_as_uint64_array(values))


def hamming_distances(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Element-wise (broadcast) Hamming distances between hash arrays or single hashes."""
    return np.bitwise_count(_as_uint64_array(a) ^ _as_uint64_array(b))


def _as_uint64_array(values: np.ndarray | int) -> np.ndarray:
    # Reinterpret, never convert: np.bitwise_count counts the bits of the absolute
    # value, which is wrong for negative two's-complement int64 hashes.
    if isinstance(values, int):
        return np.array(as_uint64(values), dtype=np.uint64)
    values = np.asarray(values)
    if values.dtype not in (np.int64, np.uint64):
        raise TypeError(f"expected int64 or uint64 hashes, got {values.dtype}")
    return values.view(np.uint64)


# -- re-cropped copies ----------------------------------------------------------------
#
# Cutting 5-15% off an image's sides moves its pHash by 12-24 bits: the content
# shifts and rescales under the fixed 32x32 grid. So each image also gets the
# hashes of windows cut from it the way shops re-crop (each side's share of a cut
# of CROP_STEP .. CROP_MAX on each axis, on a CROP_STEP grid); a re-cropped copy's
# own full-image hashes land near one of its original's window hashes. Windows are
# cut from a WINDOW_SIDE square grey copy (cheap), so their hashes are close to,
# not bit-equal with, imagehash's of the same crop.
CROP_STEP = 0.05
CROP_MAX = 0.15
WINDOW_SIDE = 96


def _axis_cuts(step: float = CROP_STEP, most: float = CROP_MAX) -> list[tuple[float, float]]:
    """(near side, far side) cut fractions of one axis."""
    cuts = []
    for total in range(1, round(most / step) + 1):
        cuts += [(near * step, (total - near) * step) for near in range(total + 1)]
    return cuts


CROP_WINDOWS = tuple((left, top, 1 - right, 1 - bottom)
                     for left, right in _axis_cuts() for top, bottom in _axis_cuts())


def window_hashes(image: Image.Image) -> tuple[list[int], list[int]]:
    """(pHashes, dHashes) of `image`'s CROP_WINDOWS, in that order.

    Each window's crop-and-resize is separable, one resampling matrix per axis cut,
    so all windows come from a few small matrix products instead of 162 PIL resizes
    (6x faster). The matrices hold Pillow's own fixed-point Lanczos weights and each
    pass rounds like Pillow, so the pixels, and the hashes, equal PIL's crop().resize().
    """
    p_rows, d_rows, columns = _window_weights()
    _buffers.grey[...] = np.asarray(_grey(image).resize((WINDOW_SIDE, WINDOW_SIDE), _LANCZOS))
    # Horizontal pass, pHash's and dHash's columns in one product, every x cut against
    # each block of rows (see _ROW_BLOCK): (cuts, blocks, rows, out), i.e. (cuts, WINDOW_SIDE, out).
    blocks = _buffers.grey.reshape(1, -1, _ROW_BLOCK, WINDOW_SIDE)
    across = _buffers.across
    _clip8(np.matmul(blocks, columns[:, None], out=across.reshape(len(_AXIS_BOUNDS), -1, _ROW_BLOCK, across.shape[2])))
    # Vertical pass, every y cut against every x cut's strip: (x cut, y cut, rows, columns),
    # i.e. windows in CROP_WINDOWS order, x cut outer.
    p = _clip8(np.matmul(p_rows, across[:, None, :, :_PHASH_SIDE], out=_buffers.p))
    d = _clip8(np.matmul(d_rows, across[:, None, :, _PHASH_SIDE:], out=_buffers.d))
    p = p.reshape(len(CROP_WINDOWS), _PHASH_SIDE, _PHASH_SIDE)
    d = d.reshape(len(CROP_WINDOWS), _HASH_SIDE, _HASH_SIDE + 1)
    d_bits = (d[..., 1:] > d[..., :-1]).reshape(len(CROP_WINDOWS), -1)
    # _phash_of_grey's DCT, in place; the rows past the 8th are never used, so the second pass skips them.
    dct = scipy.fft.dct(scipy.fft.dct(p, axis=1, overwrite_x=True)[:, :_HASH_SIDE], axis=2, overwrite_x=True)
    low = dct[:, :, :_HASH_SIDE].reshape(len(CROP_WINDOWS), -1)
    p_bits = low > np.median(low, axis=1, keepdims=True)
    return _rows_to_int64(p_bits), _rows_to_int64(d_bits)


def _rows_to_int64(bits: np.ndarray) -> list[int]:
    return np.packbits(bits, axis=1).view(">i8")[:, 0].astype(np.int64).tolist()


# Pillow's Lanczos resize of 8-bit images (libImaging/Resample.c), as matrices. Weights
# are integers scaled by 2^22; a pass sums pixel * weight, adds half and shifts. Our
# matrices hold those integers divided by 2^22 (exact: a power of two), so every sum
# is Pillow's integer sum / 2^22, exact in float64 (< 2^32 units of 2^-22) whatever
# order BLAS sums in, and rounding is floor(sum + 0.5), clipped: Pillow's pixel bit for
# bit. Pillow resizes horizontally first, rounding to 8 bits between the passes; so do we.
_PRECISION_BITS = 22
_AXIS_BOUNDS = tuple((round(near * WINDOW_SIDE), round((1 - far) * WINDOW_SIDE)) for near, far in _axis_cuts())
# The horizontal pass goes in blocks of rows so that every BLAS call stays under
# OpenBLAS's threading threshold (m * n * k <= 65536 * 4): threads cost products this
# small far more than they save (measured: 0.9 ms became 4-12 ms on 2 CPUs), the more
# so with one worker process per CPU.
_ROW_BLOCK = 32


class _WindowBuffers(threading.local):
    """window_hashes' working arrays, made once per thread. Allocated per call, this
    memory (~2 MB with the temporaries these replace) went back to the OS between
    images and was faulted in again, zeroed, for the next one: ~500 page faults, ~2 ms
    per image on the 2-core vm, more than the matrix products themselves."""

    def __init__(self):
        cuts = len(_AXIS_BOUNDS)
        self.grey = np.empty((WINDOW_SIDE, WINDOW_SIDE))
        self.across = np.empty((cuts, WINDOW_SIDE, _PHASH_SIDE + _HASH_SIDE + 1))
        self.p = np.empty((cuts, cuts, _PHASH_SIDE, _PHASH_SIDE))
        self.d = np.empty((cuts, cuts, _HASH_SIDE, _HASH_SIDE + 1))


_buffers = _WindowBuffers()


def _clip8(sums: np.ndarray) -> np.ndarray:
    """Pillow's clip8, in place: each sum rounded half up to an integer, clipped to 0..255."""
    sums += 0.5
    np.floor(sums, out=sums)
    return np.clip(sums, 0, 255, out=sums)


@functools.cache
def _window_weights() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every axis cut's resampling matrices, Pillow's weights / 2^22: (pHash rows, dHash rows, columns).

    Rows, (cuts, out, WINDOW_SIDE), multiply from the left, out = 32 for pHash, 8 for
    dHash; columns, (cuts, WINDOW_SIDE, 32 + 9), from the right: the transposes of
    pHash's 32 and dHash's 9 side by side.
    """
    def stacked(out: int) -> np.ndarray:
        return np.stack([_resample_weights(start, stop, out) for start, stop in _AXIS_BOUNDS]) / (1 << _PRECISION_BITS)

    columns = np.concatenate([stacked(_PHASH_SIDE), stacked(_HASH_SIDE + 1)], axis=1).transpose(0, 2, 1)
    return stacked(_PHASH_SIDE), stacked(_HASH_SIDE), np.ascontiguousarray(columns)


def _resample_weights(start: int, stop: int, out: int) -> np.ndarray:
    """(out, WINDOW_SIDE) weights resizing pixels start..stop of an axis to `out` pixels.

    Resample.c's precompute_coeffs and normalize_coeffs_8bpc step for step (the same
    double arithmetic), for a crop of start..stop resized with the default box.
    """
    size = stop - start
    scale = size / out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale  # Lanczos-3
    inverse = 1.0 / filterscale
    weights = np.zeros((out, WINDOW_SIDE))
    for index in range(out):
        center = (index + 0.5) * scale
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), size)
        taps = [_lanczos((x - center + 0.5) * inverse) for x in range(low, high)]
        total = 0.0
        for tap in taps:  # in order, as C does (sum() compensates since Python 3.12)
            total += tap
        taps = [tap / total if total != 0.0 else tap for tap in taps]
        weights[index, start + low:start + high] = [
            math.trunc(tap * (1 << _PRECISION_BITS) + (-0.5 if tap < 0 else 0.5)) for tap in taps]
    return weights


def _lanczos(x: float) -> float:
    """Resample.c's lanczos_filter."""
    if not -3.0 <= x < 3.0:
        return 0.0
    return _sinc(x) * _sinc(x / 3)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


# -- verification thumbnail -------------------------------------------------------------
#
# 64-bit hashes cannot tell apart two different photos of one shoe kind on a light
# backdrop (pHash 4-10 bits apart), and crop windows multiply such chance matches.
# So hash matches are only candidates, checked against a small grey thumbnail
# (curation.clusters): THUMB_SIDE^2 bytes per image, squashed square like the hashes
# so that a crop window's box maps onto it.
THUMB_SIDE = 32


def thumbnail(image: Image.Image) -> bytes:
    """`image` in grey, box-averaged to THUMB_SIDE x THUMB_SIDE, row-major uint8."""
    return _grey(image).resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
