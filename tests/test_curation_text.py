"""Text curation: promo-free titles and descriptions, captions, and the shoe filter.

Scored against what the replay catalog plants (promo_spam, html_text, non-shoe
items with their kind) and sanity-checked on real shop titles where the shared
fixtures exist (read in place, never copied).
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from clipshoe_pipeline.curation.config import CaptionConfig
from clipshoe_pipeline.curation.shoes import non_shoe_reason
from clipshoe_pipeline.curation.text import build_caption, clean_description, clean_title
from replay_shop import vocab
from replay_shop.catalog import Catalog
from replay_shop.records import ShopProduct
from clipshoe_common.text import html_to_text
from tests.builders import real_fixture

SHOE_TITLE = "Giày thể thao Nike Air Max 90 nam màu đen"
# The reason each planted non-shoe kind must be rejected with (replay_shop.vocab.NON_SHOE_KINDS).
EXPECTED_KEYWORDS = {
    "sock": {"non_shoe:keyword:tất", "non_shoe:keyword:vớ"},
    "shoelace": {"non_shoe:keyword:dây giày"},
    "insole": {"non_shoe:keyword:lót giày"},
    "shoe_polish": {"non_shoe:keyword:xi đánh giày"},
    "shoe_bag": {"non_shoe:keyword:túi đựng giày"},
    "t_shirt": {"non_shoe:keyword:áo thun"},
}
_PHONE_DIGITS = re.compile(r"(?:\d[ .]?){9,}")


def product_row(product: ShopProduct) -> dict:
    """A raw_products row as the crawler would make it from a catalog product."""
    return {
        "site": product.site, "product_id": product.product_id, "title": product.title,
        "description": html_to_text(product.description_html), "brand": product.brand,
        "category_path": list(product.category_path),
        "attributes": {"colour": product.colour, "material": product.material, "gender": product.gender,
                       "style": product.shoe_type},
    }


@pytest.fixture(scope="module", params=(0, 1, 2))
def catalog_products(request) -> list[ShopProduct]:
    catalog = Catalog(seed=request.param, products_per_site=200)
    return [product for site in catalog.sites for product in catalog.products(site)]


# -- titles -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", vocab.PROMO_PREFIXES)
@pytest.mark.parametrize("suffix", vocab.PROMO_SUFFIXES)
def test_planted_promo_prefixes_suffixes_and_emoji_are_removed(prefix, suffix):
    for emoji in vocab.EMOJI_RUNS:
        assert clean_title(f"{prefix} {SHOE_TITLE} {emoji} {suffix}") == SHOE_TITLE


@pytest.mark.parametrize("raw, cleaned", [
    ("Giày Biti's Hunter X size 39 - 44", "Giày Biti's Hunter X size 39 - 44"),
    ("Giày Biti&#39;s Hunter &amp; quà", "Giày Biti's Hunter & quà"),
    ("Giày đế giảm chấn (Size 39-44) (Hot Pink)", "Giày đế giảm chấn (Size 39-44) (Hot Pink)"),
    ("Charles & Keith giày cao gót 1.299.000đ", "Charles & Keith giày cao gót 1.299.000đ"),
    ("[300 cái] Lót giày 3/4 360°", "[300 cái] Lót giày 3/4 360°"),
    ("GIÀY THỂ THAO NỮ SALE", "GIÀY THỂ THAO NỮ"),
    ("Giày nam [ Free Ship ] [Ảnh thật][Rẻ vô địch]", "Giày nam"),
    ("Giày chính hãng 100% giảm 50% giá sốc Siêu HOT", "Giày"),
    ("Dép FREESHIPGiày nữ", "Dép Giày nữ"),
    ("Giày nam!!! Đẹp???  Rẻ...", "Giày nam! Đẹp? Rẻ."),
    ("Giày <b>nam</b><script>var a = 1;</script>", "Giày nam"),
    ("Giày nam https://shop.vn/p/1 www.shop.vn", "Giày nam"),
])
def test_clean_title_removes_boilerplate_and_keeps_content(raw, cleaned):
    assert clean_title(raw) == cleaned


@pytest.mark.parametrize("phone", [
    "0912 345 678", "0912.345.678", "+84 912 345 678", "0912345678", "091 234 5678", "024 3826 1234",
    "Hotline/Zalo: 0912 345 678", "gọi 0399767879",
])
def test_vietnamese_phone_numbers_are_removed(phone):
    assert clean_title(f"Giày nam {phone}") == "Giày nam"


def test_clean_title_returns_nfc_on_one_line():
    decomposed = unicodedata.normalize("NFD", "Giày\nthể   thao")
    assert clean_title(decomposed) == unicodedata.normalize("NFC", "Giày thể thao")
    assert clean_title(None) == ""


def test_catalog_titles_lose_every_planted_mess(catalog_products):
    messy = [p for p in catalog_products if {"promo_spam", "html_text"} & set(p.mess)]
    assert messy
    for product in messy:
        title = clean_title(product.title)
        spam = r"[\[\];<>\"]|&amp;|freeship|hàng có sẵn|giảm \d+%|bảo hành|HOT|bán chạy|quà tặng|mẫu mới"
        assert not re.search(spam, title, re.IGNORECASE), title
        assert all(unicodedata.category(ch) != "So" for ch in title), title
        if product.brand:
            assert product.brand in title


# -- descriptions ---------------------------------------------------------------------


def test_catalog_descriptions_keep_facts_and_lose_spam(catalog_products):
    for product in catalog_products:
        description = clean_description(product.description_html)
        assert f"Chất liệu: {product.material}" in description
        assert f"Màu sắc: {product.colour}" in description
        assert not _PHONE_DIGITS.search(description), description
        for junk in ("dataLayer", "<", "&amp;", "FREESHIP", "Hotline", "Inbox", "hoàn tiền", "MÔ TẢ SẢN PHẨM"):
            assert junk not in description, (junk, description)


# -- captions -------------------------------------------------------------------------


def test_caption_follows_the_template():
    row = {"title": "Giày thể thao Classic 12", "brand": "Nike", "category_path": ["Giày dép", "Giày nam"],
           "attributes": {"colour": "đen", "material": "vải lưới", "gender": "nam", "style": "sneaker"}}
    assert build_caption(row, CaptionConfig()) == (
        "Giày thể thao Classic 12. Thương hiệu Nike. Giày nam. Màu đen, chất liệu vải lưới, dành cho nam.")


def test_caption_skips_missing_and_repeated_parts():
    row = {"title": "[FREESHIP] Giày thể thao nam NIKE Classic 12", "brand": "Nike",
           "category_path": ["Giày dép", "Giày thể thao nam"],
           "attributes": [("material", "da bò")]}  # a Parquet map arrives as (key, value) pairs
    assert build_caption(row, CaptionConfig()) == "Giày thể thao nam NIKE Classic 12. Chất liệu da bò."
    assert build_caption({"title": "Giày", "brand": None, "category_path": None, "attributes": None}) == "Giày."


def test_caption_is_capped_at_a_word_boundary():
    row = {"title": "Giày " + " ".join(f"từ{i}" for i in range(100)), "brand": "Nike"}
    for max_chars in (40, 77, 300):
        caption = build_caption(row, CaptionConfig(max_chars=max_chars))
        assert len(caption) <= max_chars
        assert row["title"].startswith(caption)  # cut between words, not inside one


def test_every_catalog_shoe_gets_a_caption_with_its_facts(catalog_products):
    for product in catalog_products:
        caption = build_caption(product_row(product), CaptionConfig())
        assert 0 < len(caption) <= 300
        assert product.colour in caption and product.material in caption


# -- shoe filter ----------------------------------------------------------------------


def test_catalog_non_shoes_are_rejected_with_their_keyword_and_shoes_kept(catalog_products):
    for product in catalog_products:
        reason = non_shoe_reason(product_row(product))
        if product.is_shoe:
            assert reason is None, (product.title, reason)
        else:
            assert reason in EXPECTED_KEYWORDS[product.shoe_type], (product.title, reason)


@pytest.mark.parametrize("title, reason", [
    ("Giày thể thao nam tặng kèm tất", None),
    ("Giày sneaker phù hợp tất cả mọi người", None),
    ("Nike Air Max 90", None),
    ("Tất cổ ngắn Nike", "non_shoe:keyword:tất"),
    ("Miếng lót giày êm chân", "non_shoe:keyword:lót giày"),
    ("Kiwi Classic 3 - xi đánh giày unisex sáp đen", "non_shoe:keyword:xi đánh giày"),
    ("Nike Sock Dart Sneakers", None),
    ("Boots with Laces", None),
    ("Sneaker Socks", "non_shoe:keyword:socks"),
    ("Running Shoe Insoles", "non_shoe:keyword:insoles"),
    ("Leather Shoe Bag for Travel", "non_shoe:keyword:shoe bag"),
    ("Basic Crew Neck T-Shirt - White", "non_shoe:keyword:t-shirt"),
])
def test_keyword_rules_read_the_head_noun(title, reason):
    assert non_shoe_reason({"title": title, "category_path": ["Giày dép"]}) == reason


def test_description_decides_only_when_the_title_names_nothing():
    row = {"title": "Nike Classic 12", "description": "Vớ thể thao cổ ngắn\nĐi kèm giày"}
    assert non_shoe_reason(row) == "non_shoe:keyword:vớ"
    assert non_shoe_reason({**row, "title": "Giày Nike Classic 12"}) is None


@pytest.mark.parametrize("path, reason", [
    (["Giày dép", "Phụ kiện giày"], "non_shoe:category:Phụ kiện giày"),
    (["Thể thao & Du lịch", "Xe đạp"], "non_shoe:category:Xe đạp"),
    (["Women", "Shoes"], None),
    (["Giày Dép Nam", "Giày Thể Thao/ Sneakers"], None),
    ([], None),
])
def test_category_rules_judge_vague_titles(path, reason):
    assert non_shoe_reason({"title": "Nike Classic 12", "category_path": path}) == reason


# -- real shop titles (read in place when the shared fixtures exist) ----------------------


def _real(site: str, name: str):
    return json.loads(real_fixture(site, name).read_text(encoding="utf-8"))


def test_real_titles_are_cleaned_without_emptying_them():
    shopee = [item["item_basic"]["name"] for item in _real("shopee", "shopee_vn_search_items_items_array.json")]
    tiki = [item["name"] for item in _real("tiki", "tiki_api_v2_products_listing_full_response.json")["data"]]
    for title in shopee + tiki:
        cleaned = clean_title(title)
        assert cleaned, title
        assert not re.search(r"free\s*ship|\[chính hãng\]", cleaned, re.IGNORECASE), cleaned
        # Model numbers survive: every code such as "N120", "A138", "VS03KB" is still there.
        for code in re.findall(r"\b[A-Z]+\d+[A-Z]*\b", title):
            assert code in cleaned, (code, title)


def test_real_helmets_are_not_shoes_and_real_shoe_titles_are():
    helmets = [item["item_basic"]["name"] for item in _real("shopee", "shopee_vn_search_items_items_array.json")]
    named_helmets = [t for t in helmets if re.match(r"\W*(mũ|nón)", clean_title(t), re.IGNORECASE)]
    assert named_helmets and all(non_shoe_reason({"title": t}) for t in named_helmets)
    sendo = _real("sendo", "sendo_searchlist_web_products_q_giay_the_thao_600items_wrapped.json")["products"]
    shoes = [p["name"] for p in sendo if re.match(r"giày", p["name"], re.IGNORECASE)]
    assert shoes and all(non_shoe_reason({"title": t}) is None for t in shoes)
