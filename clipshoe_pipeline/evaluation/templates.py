"""Prompt templates and class texts for zero-shot classification, in English and
Vietnamese.

The fine-tuned model learns from Vietnamese shop captions, so it is evaluated with
Vietnamese prompts as well as CLIP's usual English ones: a fine-tune that only
improves Vietnamese would otherwise look like forgetting. Templates are per
attribute because "a photo of {}" reads well for "boots" but not for "leather".
UT Zappos50K's values are terse labels ("Ankle" is a kind of boot, "Flat" a sandal or
a heel height), so class texts are looked up per (attribute, value); a value without
an entry is used as is, lower-cased (in Vietnamese, its English text: shop titles mix
in English words such as "sneaker" or "oxford"). Everything is a plain mapping so a
caller can pass its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

LANGUAGES = ("en", "vi")
DEFAULT = "*"  # templates for attributes without their own

TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        DEFAULT: ("a photo of {}.", "a product photo of {}.", "a catalogue photo of {}.", "a close-up photo of {}."),
        "Gender": ("a photo of shoes for {}.", "a product photo of footwear for {}."),
        "Material": ("a photo of a shoe made of {}.", "a product photo of {} footwear."),
        "Closure": ("a photo of a shoe with a {} closure.", "a product photo of {} footwear."),
        "HeelHeight": ("a photo of a shoe with a heel height of {}.", "a product photo of a shoe, heel {}."),
        "ToeStyle": ("a photo of a {} shoe.", "a product photo of footwear with a {}."),
    },
    "vi": {
        DEFAULT: ("ảnh {}.", "ảnh sản phẩm {}.", "hình chụp {}.", "ảnh cận cảnh {}."),
        "Gender": ("ảnh giày dép dành cho {}.", "ảnh sản phẩm giày {}."),
        "Material": ("ảnh giày làm bằng {}.", "ảnh sản phẩm giày chất liệu {}."),
        "Closure": ("ảnh giày có {}.", "ảnh sản phẩm giày kiểu {}."),
        "HeelHeight": ("ảnh giày có gót cao {}.", "ảnh sản phẩm giày, độ cao gót {}."),
        "ToeStyle": ("ảnh giày {}.", "ảnh sản phẩm giày kiểu {}."),
    },
}

_BOOT_KINDS = {"Ankle": "ankle boots", "Knee High": "knee high boots", "Mid-Calf": "mid-calf boots",
               "Over the Knee": "over the knee boots", "Prewalker Boots": "baby prewalker boots"}
CLASS_TEXTS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "SubCategory": {**_BOOT_KINDS, "Athletic": "athletic sandals", "Flat": "flat sandals",
                        "Heel": "heeled sandals", "Prewalker": "baby prewalker shoes",
                        "Firstwalker": "baby firstwalker shoes", "Crib Shoes": "baby crib shoes",
                        "Boot": "slipper boots", "Sneakers and Athletic Shoes": "sneakers"},
        "Gender": {"Men": "men", "Women": "women", "Boys": "boys", "Girls": "girls"},
        "HeelHeight": {"Flat": "flat, no heel"},
    },
    "vi": {
        "Category": {"Boots": "bốt", "Sandals": "dép sandal", "Shoes": "giày", "Slippers": "dép đi trong nhà"},
        "SubCategory": {
            "Ankle": "bốt cổ ngắn", "Knee High": "bốt cao cổ đến gối", "Mid-Calf": "bốt cổ lửng",
            "Over the Knee": "bốt cao quá gối", "Prewalker Boots": "bốt tập đi cho bé",
            "Athletic": "sandal thể thao", "Flat": "sandal đế bệt", "Heel": "sandal cao gót",
            "Boat Shoes": "giày boat", "Clogs and Mules": "giày sục và giày mule",
            "Crib Shoes": "giày cho trẻ sơ sinh", "Firstwalker": "giày tập đi", "Flats": "giày bệt",
            "Heels": "giày cao gót", "Loafers": "giày lười", "Oxfords": "giày oxford",
            "Prewalker": "giày tập đi cho bé", "Sneakers and Athletic Shoes": "giày thể thao",
            "Boot": "dép bốt đi trong nhà", "Slipper Flats": "dép đi trong nhà đế bệt",
            "Slipper Heels": "dép đi trong nhà có gót",
        },
        "Gender": {"Men": "nam", "Women": "nữ", "Boys": "bé trai", "Girls": "bé gái"},
        "Material": {"Leather": "da", "Rubber": "cao su", "Synthetic": "chất liệu tổng hợp", "Suede": "da lộn",
                     "Canvas": "vải canvas", "Mesh": "vải lưới", "Fabric": "vải", "Patent Leather": "da bóng",
                     "Nubuck": "da nubuck", "Wool": "len", "Cotton": "cotton", "Satin": "sa tanh"},
        "Closure": {"Lace up": "dây buộc", "Buckle": "khóa cài", "Zipper": "khóa kéo", "Hook and Loop": "quai dán",
                    "Slip-On": "xỏ chân", "Pull-on": "kéo lên", "Elastic Gore": "chun co giãn"},
        "HeelHeight": {"Flat": "đế bằng"},
        "ToeStyle": {"Round Toe": "mũi tròn", "Pointed Toe": "mũi nhọn", "Square Toe": "mũi vuông",
                     "Open Toe": "hở mũi", "Closed Toe": "bít mũi", "Peep Toe": "hở mũi nhỏ",
                     "Almond": "mũi hạnh nhân"},
    },
}


def templates_for(attribute: str, language: str,
                  templates: Mapping[str, Mapping[str, Sequence[str]]] = TEMPLATES) -> tuple[str, ...]:
    """The attribute's templates in `language`, or the language's default ones."""
    by_attribute = templates[language]
    return tuple(by_attribute.get(attribute, by_attribute[DEFAULT]))


def class_text(attribute: str, value: str, language: str,
               class_texts: Mapping[str, Mapping[str, Mapping[str, str]]] = CLASS_TEXTS) -> str:
    """The words a prompt uses for `value` of `attribute` in `language`."""
    text = class_texts.get(language, {}).get(attribute, {}).get(value)
    if text is not None:
        return text
    return value.lower() if language == "en" else class_text(attribute, value, "en", class_texts)
