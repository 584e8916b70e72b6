"""Small parsing helpers shared by the spiders: one-line strings, URL hygiene, prices.

Only mechanical normalisation happens here (what any consumer of the item needs);
promo-spam removal and caption building belong to curation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin

from clipshoe_common.text import html_to_text


def clean_str(value: object) -> str | None:
    """A one-line plain string, or None for missing/placeholder values."""
    text = html_to_text(value).replace("\n", " ").strip()
    if text.lower() in ("", "none", "null", "0", "no brand", "oem"):
        return None
    return text


def absolute_url(url: object, base: str = "https://") -> str | None:
    """Absolute https URL from absolute, protocol-relative or relative forms."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if url.startswith("//"):
        return "https:" + url
    if url.startswith(("http://", "https://")):
        return url
    return urljoin(base, url)


def unique(urls: Iterable[str | None]) -> list[str]:
    """Drop empties and repeats, keep the first occurrence's order."""
    seen: dict[str, None] = {}
    for url in urls:
        if url and url not in seen:
            seen[url] = None
    return list(seen)


_GROUPED = re.compile(r"^\d{1,3}([.,])\d{3}(\1\d{3})*$")  # 1.299.000 / 1,299,000


def to_float(value: object) -> float | None:
    """A number from a number or a price text ("S$ 79.00", "1.299.000₫")."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    digits = re.sub(r"[^\d.,]", "", str(value))
    if _GROUPED.match(digits):  # Vietnamese prices group thousands with dots
        digits = re.sub(r"[.,]", "", digits)
    digits = digits.replace(",", "")
    try:
        return float(digits) if digits else None
    except ValueError:
        return None
