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
    return _phash_of_grey(image.convert("L"))


def dhash(image: Image.Image) -> int:
    """imagehash.dhash(image) as a signed int64."""
    return _dhash_of_grey(image.convert("L"))


def perceptual_hashes(image: Image.Image) -> tuple[int, int]:
    """(phash, dhash) of `image`, converting it to grayscale once."""
    grey = image.convert("L")
    return _phash_of_grey(grey), _dhash_of_grey(grey)


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
    """(pHashes, dHashes) of `image`'s CROP_WINDOWS, in that order."""
    grey = image.convert("L").resize((WINDOW_SIDE, WINDOW_SIDE), _LANCZOS)
    p_pixels, d_pixels = [], []
    for x0, y0, x1, y1 in CROP_WINDOWS:
        window = grey.crop((round(x0 * WINDOW_SIDE), round(y0 * WINDOW_SIDE),
                            round(x1 * WINDOW_SIDE), round(y1 * WINDOW_SIDE)))
        p_pixels.append(np.asarray(window.resize((_PHASH_SIDE, _PHASH_SIDE), _LANCZOS)))
        d_pixels.append(np.asarray(window.resize((_HASH_SIDE + 1, _HASH_SIDE), _LANCZOS)))
    # The same computation as _phash_of_grey and _dhash_of_grey, for all windows at once.
    dct = scipy.fft.dct(scipy.fft.dct(np.stack(p_pixels), axis=1), axis=2)
    low = dct[:, :_HASH_SIDE, :_HASH_SIDE].reshape(len(CROP_WINDOWS), -1)
    p_bits = low > np.median(low, axis=1, keepdims=True)
    d = np.stack(d_pixels)
    d_bits = (d[:, :, 1:] > d[:, :, :-1]).reshape(len(CROP_WINDOWS), -1)
    return _rows_to_int64(p_bits), _rows_to_int64(d_bits)


def _rows_to_int64(bits: np.ndarray) -> list[int]:
    return np.packbits(bits, axis=1).view(">i8")[:, 0].astype(np.int64).tolist()


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
    return image.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
