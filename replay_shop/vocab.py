"""Vietnamese word lists the synthetic catalog is written from.

Kept apart from the generator so the vocabulary (what a shoe can be called, which
colours and materials exist, which promo junk shops add) can grow without touching
generation logic. Keys such as "sneaker" or "sock" are the catalog's own stable
type names (ShopProduct.shoe_type); the Vietnamese words are what shops print.
All brand/model combinations are synthetic: no entry describes a real product.
"""

from __future__ import annotations

from dataclasses import dataclass

GENDERS = ("nam", "nữ", "unisex")

COLOURS = ("đen", "trắng", "đỏ", "xanh dương", "xanh lá", "be", "nâu", "hồng", "xám", "vàng")

SPORT_BRANDS = ("Nike", "Adidas", "Puma", "Converse", "Vans", "Skechers", "New Balance", "Asics", "Fila")
LOCAL_BRANDS = ("Biti's", "Ananas", "MWC")
FASHION_BRANDS = ("Juno", "Vascara", "Zara", "Charles & Keith")
ACCESSORY_BRANDS = ("Kiwi", "Biti's", "Ananas", "Nike")


@dataclass(frozen=True)
class ItemKind:
    """What a product is: its Vietnamese names, who wears it, what it is made of,
    which brands sell it and its price range (thousand VND)."""

    names: tuple[str, ...]
    genders: tuple[str, ...]
    materials: tuple[str, ...]
    brands: tuple[str, ...]
    price_k: tuple[int, int]


SHOE_KINDS: dict[str, ItemKind] = {
    "sneaker": ItemKind(("giày thể thao", "giày sneaker"), GENDERS,
                        ("vải canvas", "da tổng hợp", "vải lưới", "da bò"), SPORT_BRANDS + LOCAL_BRANDS, (300, 2500)),
    "running": ItemKind(("giày chạy bộ", "giày running"), GENDERS,
                        ("vải lưới", "da tổng hợp"), SPORT_BRANDS, (400, 3500)),
    "boot": ItemKind(("bốt", "giày boot", "boot cổ cao"), GENDERS,
                     ("da bò", "da tổng hợp", "nỉ"), LOCAL_BRANDS + FASHION_BRANDS + ("Vans", "Converse"), (500, 3000)),
    "sandal": ItemKind(("sandal", "giày sandal"), GENDERS,
                       ("da tổng hợp", "cao su", "da bò"), LOCAL_BRANDS + FASHION_BRANDS + ("Adidas",), (150, 900)),
    "slipper": ItemKind(("dép", "dép quai ngang", "dép lê"), GENDERS,
                        ("cao su", "da tổng hợp"), LOCAL_BRANDS + ("Nike", "Adidas", "Puma"), (60, 400)),
    "loafer": ItemKind(("giày lười", "giày mọi"), ("nam", "nữ"),
                       ("da bò", "da tổng hợp", "nỉ"), LOCAL_BRANDS + FASHION_BRANDS, (300, 1800)),
    "oxford": ItemKind(("giày tây", "giày da công sở"), ("nam",),
                       ("da bò", "da tổng hợp"), LOCAL_BRANDS + ("Zara",), (400, 2500)),
    "high_heel": ItemKind(("giày cao gót",), ("nữ",),
                          ("da tổng hợp", "da bò", "nỉ"), FASHION_BRANDS, (250, 1500)),
    "ballet_flat": ItemKind(("giày búp bê",), ("nữ",),
                            ("da tổng hợp", "nỉ", "vải canvas"), FASHION_BRANDS + ("Biti's",), (200, 900)),
}

# Planted in shoe categories: a curated shoe dataset must drop these.
NON_SHOE_KINDS: dict[str, ItemKind] = {
    "sock": ItemKind(("tất cổ ngắn", "vớ thể thao"), GENDERS, ("vải cotton",), ACCESSORY_BRANDS, (20, 120)),
    "shoelace": ItemKind(("dây giày",), ("unisex",), ("vải cotton",), ACCESSORY_BRANDS, (15, 80)),
    "insole": ItemKind(("lót giày", "miếng lót giày êm chân"), ("unisex",), ("cao su", "nỉ"), ACCESSORY_BRANDS, (25, 150)),
    "shoe_polish": ItemKind(("xi đánh giày",), ("unisex",), ("sáp",), ("Kiwi",), (20, 90)),
    "shoe_bag": ItemKind(("túi đựng giày",), ("unisex",), ("vải canvas",), ACCESSORY_BRANDS, (40, 200)),
    "t_shirt": ItemKind(("áo thun",), GENDERS, ("vải cotton",), SPORT_BRANDS + LOCAL_BRANDS, (90, 450)),
}

ALL_KINDS: dict[str, ItemKind] = {**SHOE_KINDS, **NON_SHOE_KINDS}

MODEL_WORDS = ("Classic", "Urban", "Runner", "Street", "Flex", "Cloud", "Nova", "Retro", "Lite", "Prime",
               "Vintage", "Daily", "Motion", "Basic", "Breeze", "Hunter", "Track", "Soft")

SELLING_POINTS = (
    "Thiết kế trẻ trung, dễ phối đồ.",
    "Đường may chắc chắn, bền đẹp.",
    "Phù hợp đi học, đi làm, đi chơi.",
    "Đế cao su chống trơn trượt.",
    "Lót trong êm ái, thoáng khí.",
    "Form chuẩn, ôm chân.",
    "Trọng lượng nhẹ, không gây mỏi chân.",
    "Bảo hành keo 6 tháng.",
    "Đổi size miễn phí trong 7 ngày.",
)

SIZE_RANGES = {"nam": "39 - 44", "nữ": "35 - 40", "unisex": "36 - 44"}

# Shop-title junk: prefixes, suffixes and emoji runs seen on marketplace listings.
PROMO_PREFIXES = ("[CHÍNH HÃNG]", "[FREESHIP]", "[SALE SỐC]", "[HÀNG MỚI VỀ]", "✅ [CHÍNH HÃNG]")
PROMO_SUFFIXES = ("FREESHIP", "hàng có sẵn", "FREESHIP - hàng có sẵn", "giảm 50%", "bảo hành 12 tháng")
EMOJI_RUNS = ("🔥🔥", "🔥🔥🔥", "⚡⚡", "💥💥", "❤️❤️", "👟🔥")
PROMO_LINES = (
    "FREESHIP toàn quốc cho đơn từ 0đ",
    "Hàng có sẵn, giao ngay trong 2h",
    "Cam kết [CHÍNH HÃNG] 100%, hoàn tiền gấp đôi nếu phát hiện hàng giả",
    "Inbox shop để được tư vấn size",
)
