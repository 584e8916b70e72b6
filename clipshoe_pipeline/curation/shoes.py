"""Is a product a shoe? Non-footwear listed in shoe categories is rejected with a reason.

Shops file socks, laces, insoles, polish, shoe bags and even T-shirts under "Giày
dép"; a shoe dataset must drop them. Matching a keyword anywhere would reject a
sneaker "tặng kèm tất" (socks included), so a name is read for its *head noun*, the
thing being sold. Vietnamese names it first ("Tất cổ ngắn Nike", "Giày thể thao ...
tặng kèm tất"); English names it last, before any "with/for/-" tail ("Nike Sock Dart
Sneakers", "Running Shoe Insoles", "Boots with Laces"). The head decides: footwear
keeps the product, a non-footwear keyword rejects it with that keyword as reason.

The text decides when it names what is sold: the title, else (title naming nothing,
e.g. "Nike Air Max 90") the description's first line. Otherwise the category path
does: a leaf naming something else ("Phụ kiện giày", shoe accessories) or a path
naming no footwear at all ("Xe đạp") rejects; a product with neither is kept, since
the crawl only visits shoe categories.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from clipshoe_pipeline.curation.text import clean_category_path, clean_description, clean_title

FOOTWEAR = "footwear"  # what a footwear term reads as; every other term reads as its reason keyword

VIETNAMESE_TERMS: dict[str, str] = {
    **dict.fromkeys(("giày", "giầy", "dép", "sandal", "sneaker", "bốt", "boot", "guốc", "sục", "xăng đan"), FOOTWEAR),
    # Spelling variants share one reason keyword.
    "tất": "tất", "vớ": "vớ", "dây giày": "dây giày", "dây giầy": "dây giày", "lót giày": "lót giày",
    "lót giầy": "lót giày", "miếng lót": "lót giày", "xi đánh giày": "xi đánh giày", "xi giày": "xi đánh giày",
    "túi đựng giày": "túi đựng giày", "túi giày": "túi đựng giày", "hộp đựng giày": "hộp đựng giày",
    "kệ giày": "kệ giày", "tủ giày": "tủ giày", "bọc giày": "bọc giày", "nước rửa giày": "vệ sinh giày",
    "vệ sinh giày": "vệ sinh giày", "khử mùi giày": "khử mùi giày", "phụ kiện": "phụ kiện",
    "áo thun": "áo thun", "áo": "áo", "quần": "quần", "túi": "túi", "balo": "balo", "mũ": "mũ", "nón": "nón",
}
ENGLISH_TERMS: dict[str, str] = {
    **dict.fromkeys(("shoe", "shoes", "sneaker", "sneakers", "boot", "boots", "sandal", "sandals", "slipper",
                     "slippers", "heels", "pumps", "loafer", "loafers", "flats", "mules", "clogs", "espadrilles",
                     "slides", "trainers", "footwear"), FOOTWEAR),
    "sock": "socks", "socks": "socks", "shoelace": "shoelaces", "shoelaces": "shoelaces", "laces": "shoelaces",
    "insole": "insoles", "insoles": "insoles", "shoe polish": "shoe polish", "polish": "shoe polish",
    "shoe bag": "shoe bag", "shoe rack": "shoe rack", "shoe cleaner": "shoe cleaner", "cleaner": "shoe cleaner",
    "accessories": "accessories", "t-shirt": "t-shirt", "t shirt": "t-shirt", "tee": "t-shirt",
    "shirt": "shirt", "dress": "dress", "bag": "bag",
}
# Words that make a term something else: "phù hợp tất cả" is "all", not socks.
_NOT_THE_NOUN = {"tất": r"(?!\s+(?:cả|yếu|nhiên|thảy))"}
# Where an English name's head part ends: "Boots with Laces", "Dress - Blue".
_ENGLISH_TAIL = re.compile(r"\s(?:with|for|in|and|featuring)\s|\s[-–|]\s|,|\(", re.IGNORECASE)


class HeadNounReader:
    """Finds a name's head noun among known terms of one language."""

    def __init__(self, terms: Mapping[str, str], head_is_first: bool, tail: re.Pattern[str] | None = None):
        self.terms = sorted(terms, key=len, reverse=True)  # longest first: "dây giày" before "giày"
        self.readings = [terms[term] for term in self.terms]
        self.pattern = re.compile(
            r"(?<!\w)(?:"
            + "|".join(f"(?P<t{i}>{re.escape(term)}){_NOT_THE_NOUN.get(term, '')}" for i, term in enumerate(self.terms))
            + r")(?!\w)",
            re.IGNORECASE,
        )
        self.head_is_first = head_is_first
        self.tail = tail

    def read(self, text: str) -> str | None:
        """FOOTWEAR, a non-footwear reason keyword, or None when no term is named."""
        if self.tail is not None:
            text = self.tail.split(text, maxsplit=1)[0]
        found = [self.readings[int(m.lastgroup[1:])] for m in self.pattern.finditer(text)]
        if not found:
            return None
        return found[0] if self.head_is_first else found[-1]


_VIETNAMESE = HeadNounReader(VIETNAMESE_TERMS, head_is_first=True)
_ENGLISH = HeadNounReader(ENGLISH_TERMS, head_is_first=False, tail=_ENGLISH_TAIL)


def read_head_noun(text: str) -> str | None:
    """FOOTWEAR, a non-footwear reason keyword, or None. A name with Vietnamese
    letters is read as Vietnamese first ("Giày sneaker" uses loanwords); a plain
    ASCII one as English first ("Sneaker Socks" are socks); the other language
    is the fallback when the first names nothing."""
    vietnamese = any(ch.isalpha() and not ch.isascii() for ch in text)
    for reader in (_VIETNAMESE, _ENGLISH) if vietnamese else (_ENGLISH, _VIETNAMESE):
        reading = reader.read(text)
        if reading:
            return reading
    return None


def non_shoe_reason(product_row: Mapping) -> str | None:
    """Why a product is not a shoe (`non_shoe:keyword:<kw>` / `non_shoe:category:<name>`),
    or None to keep it."""
    reading = read_head_noun(clean_title(product_row.get("title")))
    if reading is None:
        reading = read_head_noun(clean_description(product_row.get("description")).partition("\n")[0])
    if reading is not None:
        return None if reading == FOOTWEAR else f"non_shoe:keyword:{reading}"
    path = clean_category_path(product_row.get("category_path"))
    if path and (read_head_noun(path[-1]) not in (None, FOOTWEAR)
                 or FOOTWEAR not in map(read_head_noun, path)):
        return f"non_shoe:category:{path[-1]}"
    return None
