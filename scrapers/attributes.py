"""Canonical attribute names across shops: Vietnamese and English labels map to
one key (colour, material, gender, ...); unknown labels are kept as they are."""

from __future__ import annotations

import unicodedata

from scrapers.text import clean_str

_CANONICAL = {
    "colour": ("màu", "màu sắc", "color", "colour", "màu chủ đạo"),
    "material": ("chất liệu", "material", "chất liệu chính", "chất liệu thân", "chất liệu mặt",
                 "upper material", "chất liệu đế", "sole material"),
    "gender": ("giới tính", "gender", "đối tượng", "dành cho"),
    "size": ("kích cỡ", "kích thước", "size", "cỡ"),
    "style": ("kiểu dáng", "loại giày", "style", "kiểu", "loại sản phẩm", "product type"),
    "origin": ("xuất xứ", "xuất xứ thương hiệu", "origin", "country of origin", "nơi sản xuất"),
    "brand": ("thương hiệu", "brand"),
    "occasion": ("dịp", "occasion"),
}
_LOOKUP = {unicodedata.normalize("NFC", label): key for key, labels in _CANONICAL.items() for label in labels}


def canonical_key(label: str) -> str:
    norm = unicodedata.normalize("NFC", label.strip().lower().rstrip(":"))
    return _LOOKUP.get(norm, norm)


def normalise_attributes(pairs) -> dict[str, str]:
    """`(label, value)` pairs to a dict; repeated keys keep distinct values, joined by ', '."""
    result: dict[str, list[str]] = {}
    for label, value in pairs:
        if not isinstance(label, str):
            continue
        text = clean_str(value)
        if not text:
            continue
        values = result.setdefault(canonical_key(label), [])
        if text not in values:
            values.append(text)
    return {key: ", ".join(values) for key, values in result.items() if key}
