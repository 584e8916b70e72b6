"""The seeded synthetic catalog the replay shop serves, and its ground truth.

Every product, listing and image URL is derived from (seed, site) alone, so a crawl
can be scored exactly: which products are listed, which images are the same
picture, which items are not shoes, which images are broken. Sites are generated
lazily (a test touching one site does not pay for five) and images are rendered only
when requested. Site-specific spelling (category keys, product ids, product and image
URLs, currency) comes from the site's renderer; everything else is shared.

The catalog evolves in epochs, so a recrawl can be scored too: epoch 1 is the
catalog as first generated, and epoch N is epoch N-1 plus planted changes drawn from
(seed, site, N): some prices change, some products are added (appended to the
listings) and some disappear (their detail answers become the site's "not found"),
and some images get new bytes under the same URL. `changes()` says exactly which.

Randomness always comes from `random.Random(f"{seed}:{site}:...")` (string seeds
are hashed with SHA-512 by `random`, so results are stable across processes),
never from the global generator or `hash()`.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from replay_shop import vocab
from replay_shop.pictures import DEFECT_KINDS, PictureSpec, render
from replay_shop.records import ShopImage, ShopProduct
from replay_shop.sites import renderers as site_renderers
from replay_shop.sites.protocol import SiteRenderer

DUPLICATE_TRANSFORMS = ("original", "reencode", "resize", "crop", "watermark")
MAX_IMAGES = 5

# When epoch 1 was "published"; each later epoch is a day after the one before (the
# shop's Last-Modified stamps).
EPOCH_ONE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)

# Prices are generated in VND; storefronts in another currency show a converted price.
_VND_PER_UNIT = {"VND": 1, "MYR": 5500, "SGD": 19000, "PHP": 450, "HKD": 3200, "IDR": 1.6, "USD": 25000}

# Category-name phrases (ASCII-folded) that narrow what a category lists; the most
# specific phrases come first.
_KIND_HINTS = (
    ("cao got", ("high_heel",)),
    ("bup be", ("ballet_flat",)),
    ("sandal", ("sandal",)),
    ("sandals", ("sandal",)),
    ("chay bo", ("running",)),
    ("the thao", ("sneaker", "running")),
    ("sneaker", ("sneaker", "running")),
    ("boot", ("boot",)),
    ("bot", ("boot",)),
    ("giay tay", ("oxford",)),
    ("cong so", ("oxford", "loafer")),
    ("luoi", ("loafer",)),
    ("moi", ("loafer",)),
    ("slip on", ("loafer",)),
)


@dataclass(frozen=True)
class MessRates:
    """Share of each site's products carrying each planted mess. Counts are exact
    (`count`), not coin flips, and any positive rate plants at least one product,
    so even a tiny test catalog contains every kind of mess."""

    shared_picture: float = 0.08  # a picture also listed elsewhere (other site or product), transformed
    colour_variant: float = 0.08  # same model in another colour: different pictures, shared variant_group
    non_shoe: float = 0.05  # socks, laces, polish ... listed in a shoe category
    bad_image: float = 0.08  # one extra broken image (tiny, blank, corrupt, huge, zero_byte, not_image)
    html_text: float = 0.08  # entities, tags and a <script> block in the text
    promo_spam: float = 0.08  # [CHÍNH HÃNG], FREESHIP, emoji runs, phone numbers
    null_brand: float = 0.05  # brand missing from the structured data
    listed_twice: float = 0.03  # listed in a second category of the same site

    @staticmethod
    def count(rate: float, population: int) -> int:
        if rate <= 0 or population <= 0:
            return 0
        return min(population, max(1, round(rate * population)))


@dataclass(frozen=True)
class EpochRates:
    """Share of each site's listed products changed from one epoch to the next; like
    `MessRates`, counts are exact and any positive rate changes at least one product."""

    price: float = 0.10  # a new price (listing and detail)
    added: float = 0.05  # new products, appended to the listings
    removed: float = 0.05  # gone from the listings; the detail answers "not found"
    image: float = 0.02  # one image gets new bytes under the same URL


def epoch_time(epoch: int) -> datetime:
    """When an epoch's changes appeared (what Last-Modified says of them)."""
    return EPOCH_ONE_TIME + timedelta(days=epoch - 1)


@dataclass
class _Look:
    """What a shoe is, whoever sells it: what its text and pictures are made from."""

    kind: str
    brand: str
    model: str
    colour: str
    material: str
    gender: str

    def look(self) -> dict[str, str]:
        return {attribute.name: getattr(self, attribute.name) for attribute in fields(_Look)}


@dataclass
class _Draft(_Look):
    """A product while it is being generated (ShopProduct is frozen)."""

    category: str
    pictures: list[tuple[str, str]] = field(default_factory=list)  # (picture_id, transform)
    variant_group: str | None = None
    mess: list[str] = field(default_factory=list)
    extra_category: str | None = None


@dataclass
class _SiteData:
    """One site at one epoch: only the products it lists then."""

    products: list[ShopProduct]
    by_id: dict[str, ShopProduct]
    listings: dict[str, list[ShopProduct]]
    categories_of: dict[str, list[str]]  # product id -> every category listing it
    modified: dict[str, int]  # product id -> epoch its record last changed (added or repriced)

    @classmethod
    def indexed(cls, categories: tuple[str, ...], products: list[ShopProduct], categories_of: dict[str, list[str]],
                modified: dict[str, int]) -> "_SiteData":
        """Listings follow product order, so products added later come last."""
        listings: dict[str, list[ShopProduct]] = {c: [] for c in categories}
        for product in products:
            for category in categories_of[product.product_id]:
                listings[category].append(product)
        return cls(products=products, by_id={p.product_id: p for p in products}, listings=listings,
                   categories_of=categories_of, modified=modified)


@dataclass
class _SharedModel(_Look):
    """A shoe model several shops sell with the same photos (the duplicate source)."""

    picture_ids: tuple[str, ...]


class Catalog:
    """The synthetic shoe catalog of every replayed site, deterministic per seed."""

    def __init__(self, seed: int = 0, products_per_site: int = 200, sites: tuple[str, ...] | None = None,
                 mess: MessRates | None = None, renderers: Mapping[str, SiteRenderer] | None = None,
                 epoch: int = 1, epoch_rates: EpochRates | None = None):
        if epoch < 1:
            raise ValueError(f"epochs count from 1, not {epoch}")
        self.seed = seed
        self.products_per_site = products_per_site
        renderers = renderers if renderers is not None else site_renderers()
        self.sites = tuple(sites) if sites is not None else tuple(renderers)  # None: every site rendered
        self.mess = mess or MessRates()
        self.renderers = {site: renderers[site] for site in self.sites}
        self.epoch = epoch
        self.epoch_rates = epoch_rates or EpochRates()
        self._lock = threading.RLock()
        self._history: dict[str, list[_SiteData]] = {}  # site -> its data at epochs 1..epoch
        self._images: dict[str, ShopImage] = {}
        self._image_modified: dict[str, int] = {}  # url -> epoch its bytes last changed (absent: 1)
        self._render_specs: dict[str, tuple[PictureSpec, str]] = {}  # url -> (picture, watermark text)
        self._shared_models = self._make_shared_models()
        self._bytes_cache = _ByteLRU(max_bytes=64 * 1024 * 1024, max_item_bytes=1024 * 1024)

    # -- queries ----------------------------------------------------------------------
    def products(self, site: str) -> list[ShopProduct]:
        """Every product of a site in generation order (do not mutate the list)."""
        return self._site(site).products

    def listing(self, site: str, category: str) -> list[ShopProduct]:
        """The products listed under a category key, in a stable order."""
        return self._site(site).listings.get(category, [])

    def product(self, site: str, product_id: str) -> ShopProduct | None:
        return self._site(site).by_id.get(str(product_id))

    def categories_of(self, site: str, product_id: str) -> list[str]:
        """Every category listing a product (two for the "listed_twice" mess)."""
        return self._site(site).categories_of.get(str(product_id), [])

    def at_epoch(self, epoch: int) -> "Catalog":
        """The same catalog (seed, sites, rates) at another epoch."""
        return Catalog(seed=self.seed, products_per_site=self.products_per_site, sites=self.sites, mess=self.mess,
                       renderers=self.renderers, epoch=epoch, epoch_rates=self.epoch_rates)

    def modified_epoch(self, site: str, product_id: str) -> int:
        """The epoch a product's record (what its detail shows) last changed."""
        return self._site(site).modified.get(str(product_id), 1)

    def image_modified_epoch(self, image: ShopImage) -> int:
        """The epoch an image's bytes last changed."""
        return self._image_modified.get(image.url, 1)

    def image_for(self, url: str) -> ShopImage | None:
        """The catalog image with this exact real URL, or None. Images of products
        gone from the listings are still served, as CDNs keep them."""
        image = self._images.get(url)
        if image is None:  # sites are generated lazily: the URL may belong to one not built yet
            for site in self.sites:
                if site not in self._history:
                    self._site(site)
                    image = self._images.get(url)
                    if image is not None:
                        break
        return image

    def image_bytes(self, image: ShopImage) -> bytes:
        """The encoded image as the CDN serves it (rendered on first use, cached)."""
        cached = self._bytes_cache.get(image.url)
        if cached is not None:
            return cached
        spec, watermark = self._render_specs[image.url]
        body = render(spec, transform=image.transform, defect=image.defect, watermark=watermark)
        self._bytes_cache.put(image.url, body)
        return body

    # -- ground truth -----------------------------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        """What a perfect crawl and curation would find, JSON-serialisable."""
        sites: dict[str, Any] = {}
        by_picture: dict[str, list[str]] = {}
        defects: dict[str, list[str]] = {kind: [] for kind in DEFECT_KINDS}
        for site in self.sites:
            entries = []
            for product in self.products(site):
                entries.append({
                    "product_id": product.product_id,
                    "url": product.url,
                    "categories": self.categories_of(site, product.product_id),
                    "is_shoe": product.is_shoe,
                    "shoe_type": product.shoe_type,
                    "brand": product.brand,
                    "colour": product.colour,
                    "material": product.material,
                    "gender": product.gender,
                    "variant_group": product.variant_group,
                    "mess": list(product.mess),
                    "image_urls": [image.url for image in product.images],
                })
                for image in product.images:
                    if image.defect:
                        defects[image.defect].append(image.url)
                    else:
                        by_picture.setdefault(image.picture_id, []).append(image.url)
            sites[site] = {"products": entries}
        return {
            "seed": self.seed,
            "products_per_site": self.products_per_site,
            "epoch": self.epoch,
            "sites": sites,
            "duplicate_groups": {pid: urls for pid, urls in by_picture.items() if len(urls) > 1},
            "defects": defects,
            "changes": {str(epoch): self.changes(epoch) for epoch in range(2, self.epoch + 1)},
            "changes_from_1": self.changes(since=1),
        }

    def changes(self, epoch: int | None = None, since: int | None = None) -> dict[str, dict[str, Any]]:
        """What changed per site from epoch `since` (default: the one before) to `epoch`
        (default: this catalog's), JSON-serialisable: `price_changed` {product id:
        {old, new}} of products listed at both epochs, `added` and `removed` product
        ids (listing order) and `image_changed`, the URLs of listed products' images
        whose bytes differ. Products added and removed in between are in neither list."""
        epoch = self.epoch if epoch is None else epoch
        since = epoch - 1 if since is None else since
        if not 1 <= since <= epoch <= self.epoch:
            raise ValueError(f"need 1 <= since <= epoch <= {self.epoch}, got since={since}, epoch={epoch}")
        result = {}
        for site in self.sites:
            self._site(site)
            before, after = self._history[site][since - 1], self._history[site][epoch - 1]
            old_images = {image.url: image for product in before.products for image in product.images}
            result[site] = {
                "price_changed": {pid: {"old": before.by_id[pid].price, "new": product.price}
                                  for pid, product in after.by_id.items()
                                  if pid in before.by_id and before.by_id[pid].price != product.price},
                "added": [p.product_id for p in after.products if p.product_id not in before.by_id],
                "removed": [p.product_id for p in before.products if p.product_id not in after.by_id],
                "image_changed": [image.url for product in after.products for image in product.images
                                  if image.url in old_images and old_images[image.url] != image],
            }
        return result

    def write_ground_truth(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.ground_truth(), ensure_ascii=False), encoding="utf-8")
        return path

    # -- generation -------------------------------------------------------------------
    def _site(self, site: str) -> _SiteData:
        history = self._history.get(site)
        if history is None:
            if site not in self.renderers:
                raise KeyError(f"unknown site {site!r}; this catalog has {self.sites}")
            with self._lock:
                history = self._history.get(site)
                if history is None:
                    history = [_SiteBuilder(self, site).build()]
                    for epoch in range(2, self.epoch + 1):
                        history.append(_SiteBuilder(self, site, f"epoch:{epoch}").evolve(history, epoch))
                    self._history[site] = history
        return history[-1]

    def _make_shared_models(self) -> list[_SharedModel]:
        # Few models for many shared slots: each is reused within and across sites.
        slots = MessRates.count(self.mess.shared_picture, self.products_per_site)
        models = []
        for index in range(max(1, slots // 2) if slots else 0):
            rng = random.Random(f"{self.seed}:shared:{index}")
            kind = rng.choice(tuple(vocab.SHOE_KINDS))
            spec = vocab.SHOE_KINDS[kind]
            models.append(_SharedModel(
                kind=kind, brand=rng.choice(spec.brands), model=_model_name(rng), colour=rng.choice(vocab.COLOURS),
                material=rng.choice(spec.materials), gender=rng.choice(spec.genders),
                picture_ids=tuple(f"shared-{index}-{k}" for k in range(rng.randint(1, 3)))))
        return models


class _SiteBuilder:
    """Generates one site's products: drafts first (what each product is), then the
    planted mess, then text, ids, URLs and images; or one epoch's changes to them.
    `stream` names the random stream, so each epoch draws its own."""

    def __init__(self, catalog: Catalog, site: str, stream: str = "catalog"):
        self.catalog = catalog
        self.site = site
        self.renderer = catalog.renderers[site]
        self.rng = random.Random(f"{catalog.seed}:{site}:{stream}")
        self.categories = tuple(self.renderer.categories)
        self.combos = {c: _category_combos(c, tuple(self.renderer.category_path(c))) for c in self.categories}
        # Watermarks name the storefront ("tiki.vn"), taken from its product URLs.
        storefront = urlsplit(self.renderer.product_url("1", "1", "shop")).hostname or site
        self.shop_name = storefront.removeprefix("www.")

    def build(self) -> _SiteData:
        n = self.catalog.products_per_site
        rates, rng = self.catalog.mess, self.rng
        order = list(range(n))
        rng.shuffle(order)
        n_non_shoe = MessRates.count(rates.non_shoe, n)
        n_shared = min(MessRates.count(rates.shared_picture, n), n - n_non_shoe) if self.catalog._shared_models else 0
        n_variants = min(MessRates.count(rates.colour_variant, n), max(0, n - n_non_shoe - n_shared - 1))
        non_shoe = set(order[:n_non_shoe])
        shared = set(order[n_non_shoe:n_non_shoe + n_shared])
        variants = set(order[n_non_shoe + n_shared:n_non_shoe + n_shared + n_variants])

        drafts: list[_Draft | None] = [None] * n
        for i in range(n):
            if i in non_shoe:
                drafts[i] = self._non_shoe_draft()
            elif i in shared:
                drafts[i] = self._shared_draft()
            elif i not in variants:
                drafts[i] = self._plain_draft()
        plain = [i for i in range(n) if i not in non_shoe and i not in shared and i not in variants]
        for i in sorted(variants):
            drafts[i] = self._variant_of(drafts[rng.choice(plain)])
        ready: list[_Draft] = drafts  # type: ignore[assignment]  # every slot is filled above

        for tag in ("html_text", "promo_spam", "null_brand"):
            for i in rng.sample(range(n), MessRates.count(getattr(rates, tag), n)):
                ready[i].mess.append(tag)
        if len(self.categories) > 1:
            for i in rng.sample(range(n), MessRates.count(rates.listed_twice, n)):
                ready[i].extra_category = rng.choice([c for c in self.categories if c != ready[i].category])
                ready[i].mess.append("listed_twice")
        bad = rng.sample(range(n), MessRates.count(rates.bad_image, n))
        site_offset = self.catalog.sites.index(self.site) * len(bad)  # sites continue each other's defect cycle
        defect_of = {i: DEFECT_KINDS[(site_offset + k) % len(DEFECT_KINDS)] for k, i in enumerate(sorted(bad))}

        ids, shop_ids = self.renderer.new_ids(rng, [d.brand for d in ready])
        products = [self._finish(d, ids[i], shop_ids[i], defect_of.get(i)) for i, d in enumerate(ready)]
        categories_of = {p.product_id: [p.category] + ([d.extra_category] if d.extra_category else [])
                         for p, d in zip(products, ready)}
        return _SiteData.indexed(self.categories, products, categories_of, modified={})

    def evolve(self, history: list[_SiteData], epoch: int) -> _SiteData:
        """The site at `epoch`: the last of `history` (epochs 1..epoch-1) with this
        epoch's changes. The changed products are disjoint draws, so each change is
        seen on its own; new ids are never ones the site used before."""
        previous, rates, rng = history[-1], self.catalog.epoch_rates, self.rng
        listed = previous.products
        order = rng.sample(range(len(listed)), len(listed))
        n_removed, n_priced = (MessRates.count(rate, len(listed)) for rate in (rates.removed, rates.price))
        removed = {listed[i].product_id for i in order[:n_removed]}
        changed = {listed[i].product_id: replace(listed[i], price=_new_price(listed[i].price, rng))
                   for i in order[n_removed:n_removed + n_priced]}
        modified = {**previous.modified, **dict.fromkeys(changed, epoch)}
        repaintable = [(listed[i], slot) for i in order[n_removed + n_priced:]
                       if (slot := self._own_picture(listed[i])) is not None]
        for product, slot in repaintable[:MessRates.count(rates.image, len(listed))]:
            changed[product.product_id] = self._repainted(product, slot, epoch)
        used = {pid for data in history for pid in data.by_id}
        added = [self._new_product(used) for _ in range(MessRates.count(rates.added, len(listed)))]
        products = [changed.get(p.product_id, p) for p in listed if p.product_id not in removed] + added
        categories_of = {pid: cats for pid, cats in previous.categories_of.items() if pid not in removed}
        categories_of.update({p.product_id: [p.category] for p in added})
        modified.update(dict.fromkeys((p.product_id for p in added), epoch))
        return _SiteData.indexed(self.categories, products, categories_of, modified)

    def _new_product(self, used: set[str]) -> ShopProduct:
        draft = self._plain_draft()
        while True:
            (product_id,), (shop_id,) = self.renderer.new_ids(self.rng, [draft.brand])
            if product_id not in used:
                used.add(product_id)
                return self._finish(draft, product_id, shop_id, None)

    def _own_picture(self, product: ShopProduct) -> int | None:
        """The slot of a product's first unshared, untransformed, unbroken picture: the
        one to change, so no planted duplicate or defect changes along with it."""
        own = f"{self.site}-{product.product_id}-"
        return next((slot for slot, image in enumerate(product.images)
                     if image.picture_id.startswith(own) and image.transform == "original" and image.defect is None),
                    None)

    def _repainted(self, product: ShopProduct, slot: int, epoch: int) -> ShopProduct:
        """The product with the picture at `slot` replaced by a new one under the same URL
        (a seller re-uploading a photo): a new picture id, so it is no longer the old photo."""
        old, catalog = product.images[slot], self.catalog
        image = replace(old, picture_id=f"{old.picture_id}@{epoch}")
        spec, watermark = catalog._render_specs[old.url]
        catalog._images[old.url] = image
        catalog._render_specs[old.url] = (replace(spec, pose=_pose(catalog.seed, image.picture_id)), watermark)
        catalog._image_modified[old.url] = epoch
        return replace(product, images=product.images[:slot] + (image,) + product.images[slot + 1:])

    # -- drafts -----------------------------------------------------------------------
    def _plain_draft(self) -> _Draft:
        rng = self.rng
        category = rng.choice(self.categories)
        kind, gender = rng.choice(self.combos[category])
        spec = vocab.SHOE_KINDS[kind]
        return _Draft(kind=kind, brand=rng.choice(spec.brands), model=_model_name(rng),
                      colour=rng.choice(vocab.COLOURS), material=rng.choice(spec.materials), gender=gender,
                      category=category)

    def _non_shoe_draft(self) -> _Draft:
        rng = self.rng
        kind = rng.choice(tuple(vocab.NON_SHOE_KINDS))
        spec = vocab.NON_SHOE_KINDS[kind]
        return _Draft(kind=kind, brand=rng.choice(spec.brands), model=_model_name(rng),
                      colour=rng.choice(vocab.COLOURS), material=rng.choice(spec.materials),
                      gender=rng.choice(spec.genders), category=rng.choice(self.categories), mess=["non_shoe"])

    def _shared_draft(self) -> _Draft:
        rng = self.rng
        model = rng.choice(self.catalog._shared_models)
        fitting = [c for c in self.categories if (model.kind, model.gender) in self.combos[c]]
        pictures = [(pid, rng.choice(DUPLICATE_TRANSFORMS)) for pid in model.picture_ids]
        return _Draft(**model.look(), category=rng.choice(fitting or self.categories), pictures=pictures,
                      mess=["shared_picture"])

    def _variant_of(self, base: _Draft) -> _Draft:
        if base.variant_group is None:
            base.variant_group = f"{self.site}-variant-{self.rng.randrange(10**9)}"
            base.mess.append("colour_variant")
        colour = self.rng.choice([c for c in vocab.COLOURS if c != base.colour])
        return _Draft(**{**base.look(), "colour": colour}, category=base.category, variant_group=base.variant_group,
                      mess=["colour_variant"])

    # -- finishing ----------------------------------------------------------------------
    def _finish(self, draft: _Draft, product_id: str, shop_id: str, defect: str | None) -> ShopProduct:
        rng, renderer = self.rng, self.renderer
        kind_spec = vocab.ALL_KINDS[draft.kind]
        clean_title = self._title(draft, kind_spec)
        title, description = clean_title, self._description(draft, clean_title)
        if "html_text" in draft.mess:
            title, description = _with_html_mess(title, description, product_id, rng)
        if "promo_spam" in draft.mess:
            title, description = _with_promo_spam(title, description, rng)
        if defect:
            draft.mess.append("bad_image")
        images = self._images(draft, product_id, defect)
        vnd = rng.randint(*kind_spec.price_k) * 1000
        return ShopProduct(
            site=self.site, product_id=product_id, url=renderer.product_url(product_id, shop_id, _slug(clean_title)),
            title=title, description_html=description,
            brand=None if "null_brand" in draft.mess else draft.brand,
            shoe_type=draft.kind, is_shoe=draft.kind in vocab.SHOE_KINDS, colour=draft.colour,
            material=draft.material, gender=draft.gender, category=draft.category,
            category_path=tuple(renderer.category_path(draft.category)),
            price=max(1, round(vnd / _VND_PER_UNIT.get(renderer.currency, 1))), currency=renderer.currency,
            images=images, shop_id=shop_id, variant_group=draft.variant_group, mess=tuple(draft.mess))

    def _title(self, draft: _Draft, kind_spec: vocab.ItemKind) -> str:
        template = self.rng.choice((
            "{kind} {brand} {model} {gender} màu {colour}",
            "{kind} {gender} {brand} {model} - {colour}",
            "{brand} {model} - {kind} {gender} {material} {colour}",
        ))
        title = template.format(kind=self.rng.choice(kind_spec.names), brand=draft.brand, model=draft.model,
                                gender=draft.gender, colour=draft.colour, material=draft.material)
        return title[0].upper() + title[1:]

    def _description(self, draft: _Draft, title: str) -> str:
        points = "".join(f"<li>{p}</li>" for p in self.rng.sample(vocab.SELLING_POINTS, 3))
        # A "null brand" product lacks the brand in its structured text too, not just in the JSON field.
        brand = "" if "null_brand" in draft.mess else f"Thương hiệu: {html.escape(draft.brand)}<br>"
        return (f"<p>{html.escape(title)}</p>"
                f"<p>{brand}Chất liệu: {draft.material}<br>"
                f"Màu sắc: {draft.colour}<br>Giới tính: {draft.gender}<br>"
                f"Size: {vocab.SIZE_RANGES[draft.gender]}</p><ul>{points}</ul>")

    def _images(self, draft: _Draft, product_id: str, defect: str | None) -> tuple[ShopImage, ...]:
        rng = self.rng
        good = MAX_IMAGES - 1 if defect else MAX_IMAGES  # the broken one is extra: good ones remain
        own = rng.choices((1, 2, 3, 4, 5), weights=(2, 3, 3, 2, 1))[0] if not draft.pictures else rng.randint(0, 2)
        own = max(0, min(own, good - len(draft.pictures)))
        pictures = draft.pictures[:good] + [(f"{self.site}-{product_id}-{k}", "original") for k in range(own)]
        images = [self._image(draft, product_id, slot, picture_id, transform, None)
                  for slot, (picture_id, transform) in enumerate(pictures)]
        if defect:
            broken = self._image(draft, product_id, len(images), f"{self.site}-{product_id}-defect", "original", defect)
            images.insert(rng.randint(0, len(images)), broken)
        return tuple(images)

    def _image(self, draft: _Draft, product_id: str, slot: int, picture_id: str, transform: str,
               defect: str | None) -> ShopImage:
        seed = self.catalog.seed
        token = hashlib.blake2b(f"{seed}:{self.site}:{product_id}:{slot}:{picture_id}".encode(),
                                digest_size=16).hexdigest()
        image = ShopImage(url=self.renderer.image_url(token), picture_id=picture_id, transform=transform,
                          defect=defect, fmt="PNG" if defect == "huge" else "JPEG")
        self.catalog._images[image.url] = image
        self.catalog._render_specs[image.url] = (PictureSpec(draft.kind, draft.colour, _pose(seed, picture_id)),
                                                 self.shop_name)
        return image


def _pose(seed: int, picture_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{picture_id}".encode(), digest_size=8).digest(), "big")


def _new_price(price: int, rng: random.Random) -> int:
    """A different price, 5-20% up or down, as round as the old one (VND prices are whole thousands)."""
    unit = 1000 if price % 1000 == 0 else 1
    factor = rng.choice((0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.15, 1.2))
    new = max(unit, round(price * factor / unit) * unit)
    return new if new != price else price + unit


# -- text helpers ---------------------------------------------------------------------


def _model_name(rng: random.Random) -> str:
    return f"{rng.choice(vocab.MODEL_WORDS)} {rng.randint(1, 99)}"


def _with_html_mess(title: str, description: str, product_id: str, rng: random.Random) -> tuple[str, str]:
    title = title.replace(" - ", " &amp; ") if " - " in title else f"{title} &amp; quà tặng"
    title += rng.choice((" &quot;Mẫu mới&quot;", " &quot;HOT&quot;", " &#8211; bán chạy"))
    description = (
        "<p><b>MÔ TẢ SẢN PHẨM</b><br>Giày &amp; phụ kiện &quot;chính hãng&quot;</p>" + description
        + f"<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{'event': 'view_item', "
          f"'id': '{product_id}'}});</script>"
    )
    return title, description


def _with_promo_spam(title: str, description: str, rng: random.Random) -> tuple[str, str]:
    emoji = rng.choice(vocab.EMOJI_RUNS)
    title = f"{rng.choice(vocab.PROMO_PREFIXES)} {title} {emoji} {rng.choice(vocab.PROMO_SUFFIXES)}"
    phone = f"09{rng.randint(0, 9)}{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
    description += f"<p>{rng.choice(vocab.PROMO_LINES)} {emoji}</p><p>Hotline/Zalo: {phone}</p>"
    return title, description


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.findall(r"[a-z0-9]+", folded.lower())


def _slug(title: str) -> str:
    return "-".join(_ascii_words(title))


def _category_combos(category: str, path: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (shoe kind, gender) pairs a category plausibly lists, from its names:
    "Giày cao gót" lists high heels, "Giày - Dép nam" men's and unisex shoes."""
    words = _ascii_words(" ".join(path) or category)
    last = " " + " ".join(_ascii_words(path[-1] if path else category)) + " "
    gender = "nữ" if {"nu", "women"} & set(words) else "nam" if {"nam", "men"} & set(words) else None
    kinds: tuple[str, ...] = tuple(vocab.SHOE_KINDS)
    for phrase, hinted in _KIND_HINTS:
        if f" {phrase} " in last:
            kinds = hinted
            break
    else:
        if " dep " in last and " giay " not in last:
            kinds = ("slipper", "sandal")
    combos = [(k, g) for k in kinds for g in vocab.SHOE_KINDS[k].genders if gender in (None, g) or g == "unisex"]
    return combos or [(k, g) for k in vocab.SHOE_KINDS for g in vocab.SHOE_KINDS[k].genders]


class _ByteLRU:
    """A small thread-safe LRU of rendered image bodies, bounded in bytes; bodies
    over `max_item_bytes` (the planted huge images) are never kept."""

    def __init__(self, max_bytes: int, max_item_bytes: int):
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        if len(body) > self.max_item_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = body
            self._size += len(body)
            while self._size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)
