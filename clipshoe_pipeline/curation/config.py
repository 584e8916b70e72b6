"""Curation's knobs, one dataclass per step and the whole, with their measured defaults.

Kept apart from the steps themselves (numba kernels, image decoding) so that the
Dagster code location can offer them as run config without importing those.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DedupConfig:
    """When two pictures are the same photo. Defaults and their measured precision
    and recall on the replay shop's planted duplicates: benchmarks/dedup_quality.py."""

    # Candidates: Hamming distances (of 64 bits) of full-image hashes. Looser radii
    # find nothing more (the crop windows catch those copies) and would widen the gap
    # to the hash-only split check in defs/curate/checks.py.
    phash_radius: int = 4
    dhash_radius: int = 8
    # Largest per-channel difference of the mean RGB colours (0-255); None: not checked.
    # A re-crop moves the mean colour by up to 7.
    colour_distance: int | None = 8
    # Re-cropped copies: a picture's full-image hashes against the other's crop
    # windows (curation.hashing.window_hashes), within these radii; None: not checked.
    crop_phash_radius: int | None = 6
    crop_dhash_radius: int = 10
    # Largest mean absolute difference (grey levels, 0-255) of the aligned thumbnails;
    # None: candidates are not verified.
    verify_distance: float | None = 3.0

    def __post_init__(self):
        for name in ("phash_radius", "dhash_radius", "crop_phash_radius", "crop_dhash_radius"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 64:
                raise ValueError(f"{name} must be in [0, 63], got {value}")
        for name in ("colour_distance", "verify_distance"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")


@dataclass(frozen=True)
class CaptionConfig:
    """How captions are built. `max_chars` keeps captions inside what CLIP's text
    encoder reads (77 tokens; ~300 Vietnamese characters tokenise to about that)."""

    max_chars: int = 300


@dataclass(frozen=True)
class NormaliseConfig:
    """What counts as a usable image and the size it is normalised to."""

    short_side: int = 320  # shorter side of the normalised image, px
    min_side: int = 96  # shorter side below this: too_small
    max_aspect: float = 3.0  # longer / shorter side above this: extreme_aspect
    # Grayscale standard deviation below this: near_blank. A flat fill (the replay
    # shop's planted blanks) measures 0, or ~1 with JPEG noise; the replay shop's
    # least contrasted real picture measures 10 (tests/test_curation_images.py checks both).
    blank_std: float = 4.0
    jpeg_quality: int = 90

    def __post_init__(self):
        if not 256 <= self.short_side <= 384:
            raise ValueError(f"short_side must be in 256..384, not {self.short_side}")
        if self.min_side < 1 or self.max_aspect < 1 or self.blank_std < 0:
            raise ValueError(f"invalid NormaliseConfig {self}")


@dataclass(frozen=True)
class CurationConfig:
    dedup: DedupConfig = field(default_factory=DedupConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    test_fraction: float = 0.1
    split_seed: int = 0
    # Pairs kept per product / per seller, the canonical first; None: no cap. The
    # seller cap needs curate's `sellers`; products without a seller are not capped.
    max_pairs_per_product: int | None = None
    max_pairs_per_seller: int | None = None
