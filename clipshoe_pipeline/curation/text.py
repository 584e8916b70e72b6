"""Shop text to training text: cleaned titles and descriptions, and the caption.

Marketplace titles carry as much selling noise as product words ("[CHÍNH HÃNG]
Giày ... 🔥🔥 FREESHIP - hàng có sẵn"), and CLIP learns whatever the captions say, so
the noise has to go before captioning. Removal is deliberately narrow: a list of
known promo phrases, promo words only inside brackets, phone numbers, URLs, emoji.
Anything not recognised as boilerplate is kept, because destroying real content
(sizes, "Air Max 90", "Biti's") costs more than leaving a stray word.

HTML handling is `clipshoe_common.text.html_to_text` (scripts dropped, entities decoded, NFC):
the spiders and curation must agree on what the plain text of a fragment is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping

from clipshoe_common.text import html_to_text
from clipshoe_pipeline.curation.config import CaptionConfig

# Words that mark a bracketed tag as promotion: "[CHÍNH HÃNG]", "[ Free Ship ]",
# "[SALE SỐC]", "[HÀNG MỚI VỀ]", "[ẢNH THẬT]", "[TẶNG TEM BIKER]". Brackets without one
# stay: "[300 cái]", "(Size 39-44)" or "(Hot Pink)" are product facts.
_PROMO_WORDS = (
    r"free\s*ship", r"chính\s+hãng", r"chính\s+hiệu", r"auth(?:entic)?", r"có\s+sẵn", r"sẵn\s+hàng",
    r"mới\s+về", r"sale", r"giảm\s+(?:giá|\d)", r"giá\s+sốc", r"giá\s+rẻ", r"(?-i:HOT)", r"siêu\s+hot", r"ảnh\s+thật",
    r"hình\s+thật", r"tặng", r"quà", r"bảo\s+hành", r"xả\s+kho", r"xả\s+hàng", r"bán\s+chạy", r"best\s+seller",
    r"rẻ", r"khuyến\s+mãi", r"miễn\s+phí", r"ship", r"voucher", r"giao",
)
_PROMO_WORD = re.compile(r"(?<!\w)(?:" + "|".join(_PROMO_WORDS) + r")(?!\w)", re.IGNORECASE)
_BRACKETED = re.compile(r"\[[^\[\]]*\]|【[^【】]*】|\([^()]*\)")

# Promo phrases removed wherever they stand. Each needs enough context to be
# unambiguous: "hot" alone is removed only when shouted ("HOT"), so "Hot Pink" stays.
_PROMO_PHRASES = re.compile(
    r"(?<!\w)(?:"
    r"free\s*ship(?:ping)?(?:\s+(?:toàn\s+quốc|0đ|extra|max))*(?:\s+cho\s+đơn\s+từ\s+\S+)?"  # glued "FREESHIPQuần" too
    r"|(?:hàng\s+|cam\s+kết\s+)?chính\s+hãng(?:\s+100\s*%)?"
    r"|hàng\s+có\s+sẵn|có\s+sẵn\s+hàng|sẵn\s+hàng"
    r"|hàng\s+mới\s+về"
    r"|sale(?:\s+(?:off|sốc|sập\s+sàn))*(?:\s+(?:đến\s+|tới\s+)?\d{1,2}\s*%)?(?!\w)"
    r"|giảm\s+giá(?:\s+(?:đến\s+|tới\s+)?\d{1,2}\s*%)?|giảm\s+(?:đến\s+|tới\s+)?\d{1,2}\s*%"  # not "giảm chấn"
    r"|giá\s+sốc|giá\s+rẻ\s+nhất|xả\s+(?:kho|hàng)"
    r"|siêu\s+hot|sieu\s+hot|hàng\s+hot|hot\s+trend|(?-i:HOT)(?!\w)"
    r"|(?:top\s+)?bán\s+chạy(?:\s+nhất)?|best\s+seller"
    r"|bảo\s+hành\s+\d+\s+(?:tháng|năm)"
    r"|giao\s+hàng\s+miễn\s+phí|miễn\s+phí\s+vận\s+chuyển"
    r"|(?:[&+]\s*)?(?:kèm\s+)?quà\s+tặng(?:\s+kèm)?|mẫu\s+mới(?:\s+nhất)?"
    r")",
    re.IGNORECASE,
)

# Vietnamese phone numbers: 0912 345 678, 0912.345.678, 091 234 5678, +84 912 345 678,
# 0912345678, landlines 024 3826 1234; with a "Hotline/Zalo:" style label if present.
# Ten or eleven digits starting 0/84 keep prices ("1.299.000") and sizes out.
_PHONE = re.compile(
    r"(?:(?<!\w)(?:hotline|zalo|sđt|sdt|đt|điện\s+thoại|liên\s+hệ|gọi|call)\s*[/:.,-]?\s*)*"
    r"(?<![\w+])(?:\+84|0084|84|0)(?:[ .-]?\d){9,10}(?!\d)",
    re.IGNORECASE,
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)

# Description lines that are shop service talk, not product: dropped whole.
_SERVICE_LINE = re.compile(
    r"hotline|zalo|inbox|nhắn\s+tin|liên\s+hệ|free\s*ship|giao\s+ngay|hoàn\s+tiền|cam\s+kết"
    r"|^\W*mô\s+tả\s+sản\s+phẩm\W*$",
    re.IGNORECASE,
)

_KEEP_SYMBOLS = frozenset("°№")
_EMOJI_JOINERS = frozenset("\u200d\ufe0e\ufe0f\u20e3")
_REPEATED_PUNCTUATION = re.compile(r"([!?.,;:~*=_#|])\1+")
_EMPTY_BRACKETS = re.compile(r"\[\W*\]|\(\W*\)|【\W*】|\"\s*\"|“\s*”")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")
_REPEATED_SEPARATORS = re.compile(r"\s[-–—|](?:\s+[-–—|])+\s")  # "A - - B" once a phrase between went
_EDGE_JUNK = " \t-–—|/,;:"
_SPACES = re.compile(r"\s+")


def _strip_emoji(text: str) -> str:
    # Emoji are "Symbol, other" (plus joiners, variation selectors, skin tones);
    # the degree sign is one too and is kept for "360°".
    return "".join(
        " " if (unicodedata.category(ch) == "So" and ch not in _KEEP_SYMBOLS)
        or ch in _EMOJI_JOINERS or "\U0001f3fb" <= ch <= "\U0001f3ff" else ch
        for ch in text
    )


def _drop_promo_brackets(text: str) -> str:
    return _BRACKETED.sub(lambda m: " " if _PROMO_WORD.search(m.group()) else m.group(), text)


def _tidy(text: str) -> str:
    """Collapse what the removals leave behind: empty brackets, runs of separators
    and punctuation, spaces, dangling separators at the ends."""
    text = _EMPTY_BRACKETS.sub(" ", text)
    text = _REPEATED_PUNCTUATION.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    text = _REPEATED_SEPARATORS.sub(lambda m: f" {m.group().strip()[0]} ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip(_EDGE_JUNK)


def _clean_line(line: str) -> str:
    line = _URL.sub(" ", line)
    line = _PHONE.sub(" ", line)
    line = _strip_emoji(line)
    line = _drop_promo_brackets(line)
    line = _PROMO_PHRASES.sub(" ", line)
    return _tidy(line)


def clean_title(title: object) -> str:
    """A product title without HTML, promo boilerplate, emoji, phones or URLs, on one line."""
    return _clean_title("" if title is None else str(title))


# Brands, category names and attribute values repeat across the whole catalog, and a
# title is read by the shoe filter and by the caption: each is cleaned once.
@functools.lru_cache(maxsize=1 << 16)
def _clean_title(title: str) -> str:
    return _clean_line(html_to_text(title).replace("\n", " "))


def clean_description(description: str | None) -> str:
    """A description's product lines, cleaned like titles; shop service lines
    (hotline, shipping, guarantees) are dropped whole. Lines stay on their own rows."""
    lines = (
        _clean_line(line) for line in html_to_text(description).splitlines()
        if not _SERVICE_LINE.search(line)
    )
    return "\n".join(line for line in lines if line)


# The caption template (Vietnamese, every part optional):
#   "{title}. Thương hiệu {brand}. {category}. Màu {colour}, chất liệu {material}, dành cho {gender}."
# category is the most specific breadcrumb name. The brand and category sentences are
# skipped when the title already says them, so the caption spends no tokens twice.
_ATTRIBUTE_CLAUSES = (("colour", "màu {}"), ("material", "chất liệu {}"), ("gender", "dành cho {}"))
_SENTENCE_END = ".!?…"


def build_caption(product_row: Mapping, config: CaptionConfig = CaptionConfig()) -> str:
    """The training caption of a product (see the template above), capped to `config.max_chars`."""
    title = clean_title(product_row.get("title"))
    brand = clean_title(product_row.get("brand"))
    category_path = clean_category_path(product_row.get("category_path"))
    attributes = as_mapping(product_row.get("attributes"))
    said = _fold(title)

    sentences = [title]
    if brand and _fold(brand) not in said:
        sentences.append(f"Thương hiệu {brand}")
    if category_path and _fold(category_path[-1]) not in said:
        sentences.append(category_path[-1])
    values = ((template, clean_title(attributes.get(key))) for key, template in _ATTRIBUTE_CLAUSES)
    clauses = [template.format(value) for template, value in values if value]
    if clauses:
        sentences.append(_capitalise(", ".join(clauses)))
    caption = " ".join(_as_sentence(s) for s in sentences if s)
    return _truncate_at_word(caption, config.max_chars)


def clean_category_path(value: object) -> list[str]:
    """A product's category path, each name cleaned like a title, empty names dropped:
    its last element is the product's category leaf."""
    return [name for name in map(clean_title, as_list(value)) if name]


def as_list(value: object) -> list:
    """A row's list column as a list: rows arrive as dicts from Python, pyarrow or
    pandas, so a list may be a list, a tuple, a numpy array or None."""
    return [] if value is None else list(value)


def as_mapping(value: object) -> Mapping:
    """A row's map column as a mapping: a dict, or the (key, value) pairs pyarrow
    gives for a Parquet map, or None."""
    return value if isinstance(value, Mapping) else dict(as_list(value))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_sentence(text: str) -> str:
    return text if text[-1] in _SENTENCE_END else text + "."


def _truncate_at_word(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut[:max_chars]
    return head[:max_chars].rstrip(_EDGE_JUNK + ".")
