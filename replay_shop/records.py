"""The replay shop's records: the products, images and faults of a seeded synthetic catalog.

Everything the shop serves is derived from these records, and everything a test
scores against (which products are listed, which images are the same picture,
which items are not shoes, which images are broken) is recorded here too.
Demo data is synthetic: no record describes a real product.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ShopImage:
    """One image as a shop lists it.

    `picture_id` names the underlying photo: two images with the same picture_id
    are the same shoe photo, possibly transformed (re-encoded, resized, re-cropped,
    watermarked) — the planted near-duplicates that curation must find.
    """

    url: str  # the real-looking absolute https URL the shop's JSON/HTML carries
    picture_id: str
    transform: str = "original"  # original | reencode | resize | crop | watermark
    defect: str | None = None  # None | tiny | blank | corrupt | huge | zero_byte | not_image
    fmt: str = "JPEG"


@dataclass(frozen=True)
class ShopProduct:
    site: str
    product_id: str  # the site's own product id, as a string
    url: str  # the real product page URL an item must carry
    title: str  # as the shop shows it (may hold HTML entities, promo spam, emoji)
    description_html: str  # HTML, may contain <script>, promo lines, phone numbers
    brand: str | None  # None plants a "null brand"
    shoe_type: str  # sneaker, boot, sandal, ... (or the non-shoe kind, e.g. "sock")
    is_shoe: bool  # False: a non-shoe item planted in a shoe category
    colour: str
    material: str
    gender: str  # nam | nữ | unisex
    category: str  # the site-specific category key it is listed under (id or slug)
    category_path: tuple[str, ...]  # human-readable breadcrumb names
    price: int  # VND (Zalora: the storefront currency's minor-unit-free price)
    currency: str
    images: tuple[ShopImage, ...]
    shop_id: str = ""  # Shopee shopid, Lazada skuId, Tiki seller_product_id, ...
    variant_group: str | None = None  # colour variants of one model share this
    mess: tuple[str, ...] = field(default=())  # planted-mess tags, for scoring


@dataclass(frozen=True)
class Faults:
    """Fault rates per request, in [0, 1]. A URL sees at most `max_per_url`
    faults in a row before it is answered properly, so a crawler that retries
    enough collects everything; raise it to simulate a site that blocks for good.

    The detail faults are rates per product instead, and hold for good: a product
    drawn for one has its product page (detail API) answered with a 404 or the site's
    block answer on every attempt, whatever the retries, while its listing entry is
    served as usual: what a crawler collects of it is what the listing says."""

    http_429: float = 0.0
    http_500: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 0.5
    block: float = 0.0  # site-specific block body (Shopee 90309999, Lazada rgv587_flag, else 403)
    malformed_json: float = 0.0  # API answers only
    truncated_image: float = 0.0  # image answers only: connection dropped mid-body
    max_per_url: int = 2
    detail_http_404: float = 0.0  # share of products whose detail answers a plain 404, always
    detail_block: float = 0.0  # share of products whose detail answers the site's block, always

    @classmethod
    def none(cls) -> "Faults":
        return cls()

    @classmethod
    def default_on(cls) -> "Faults":
        """The mix used by the fault tests and the demo."""
        return cls(http_429=0.03, http_500=0.03, slow=0.02, block=0.03, malformed_json=0.02,
                   truncated_image=0.02)
