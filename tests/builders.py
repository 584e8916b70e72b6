"""What several test modules build: an item row, a content-addressed image store, a
small curated_pairs dataset a tiny CLIP learns from in seconds, the tiny fine-tuning
run config, the tiny model as an open_clip model folder, and a UT Zappos50K copy in the
official layout with the dataset's quirks; a stand-in site renderer for the replay
shop's core. Fixtures built from these live in conftest.py."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import random
import zipfile
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pytest
from PIL import Image

from clipshoe_pipeline.curation.config import NormaliseConfig
from clipshoe_pipeline.curation.features import Engine, LocalPool, image_features
from clipshoe_pipeline.curation.split import grouped_split
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from clipshoe_pipeline.training.models import TINY_MODEL, register_model_configs
from replay_shop.pictures import COLOUR_RGB, PictureSpec, draw
from replay_shop.sites.common import distinct_numbers
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest
from replay_shop.vocab import SHOE_KINDS
from scrapers.interface import STATS_FILE
from scrapers.items import SITES, ProductItem
from scrapers.journal import ITEMS, REJECTIONS

# Real recorded third-party bodies, read in place when a shared/ folder sits beside the
# checkout (never copied into the repository).
REAL_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"


def real_fixture(site: str, name: str) -> Path:
    """The path of a real recorded body of `site`, when present; else the test is skipped."""
    path = REAL_FIXTURES / site / name
    if not path.exists():
        pytest.skip(f"real {site} sample not present: {path}")
    return path


# -- crawled items and their images ------------------------------------------------------
def item_row(product_id: str, **changes) -> dict:
    item = ProductItem(site="tiki", product_id=product_id, url=f"https://tiki.vn/p{product_id}.html",
                       title=f"Giày {product_id}", brand="Biti's", category_path=["Giày - Dép nam"],
                       attributes={"colour": "đen"}, price=350000.0, image_urls=["https://salt.tikicdn.com/a.jpg"],
                       images=[{"url": "https://salt.tikicdn.com/a.jpg", "status": "ok", "path": "ab/ab.jpg",
                                "sha256": "ab", "bytes": 10, "width": 100, "height": 100, "format": "JPEG",
                                "reason": None}])
    return {**dataclasses.asdict(item), **changes}


def write_journal(job: Path, items: list[dict], rejections: list[dict], stats: dict | None) -> None:
    """A crawl's JOBDIR as scrapers.interface reads it: journal, rejections, final stats."""
    job.mkdir(parents=True, exist_ok=True)
    for name, rows in ((ITEMS, items), (REJECTIONS, rejections)):
        (job / name).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    if stats is not None:
        (job / STATS_FILE).write_text(json.dumps(stats))


class Store:
    """A content-addressed image store like the crawler's, in a temp folder."""

    def __init__(self, root):
        self.images = root / "images"
        self.normalised = root / "normalised"
        self.cache = root / "cache" / "image_features.parquet"
        self.pairs: list[tuple[str, str]] = []

    def add(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.images / sha[:2] / f"{sha}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.pairs.append((sha, f"{sha[:2]}/{sha}.jpg"))
        return sha

    def features(self, config: NormaliseConfig = NormaliseConfig(), engine: Engine = LocalPool(workers=1)):
        return image_features(self.images, self.normalised, self.pairs, config, self.cache, engine)


# -- curated pairs and the tiny model ----------------------------------------------------
PICTURE_SIDE = 96


def write_curated_pairs(root: Path, products: int = 120, images_per_product: int = 2,
                        test_fraction: float = 0.1) -> pa.Table:
    """Write `products` x `images_per_product` pairs (normalised JPEGs + the Parquet
    table under `root`, as curated_pairs would) and return the table."""
    paths = DataPaths(root)
    looks = itertools.cycle(itertools.product(SHOE_KINDS, COLOUR_RGB))
    rows = []
    for product in range(products):
        kind, colour = next(looks)
        for pose in range(images_per_product):
            image = draw(PictureSpec(kind=kind, colour=colour, pose=product * 10 + pose), size=PICTURE_SIDE)
            relative = Path("normalised") / f"{product:04d}-{pose}.jpg"
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            image.save(root / relative, quality=90)
            pair_id = hashlib.sha256(f"tiki:{product}:{pose}".encode()).hexdigest()[:16]
            rows.append({"pair_id": pair_id, "site": "tiki", "product_id": str(product), "image_path": str(relative),
                         "image_sha256": hashlib.sha256((root / relative).read_bytes()).hexdigest(),
                         "cluster_id": product * 10 + pose, "caption": f"giày {kind.replace('_', ' ')} màu {colour}",
                         "category_leaf": kind.replace("_", " ")})
    splits = grouped_split([f"tiki:{r['product_id']}" for r in rows], [r["cluster_id"] for r in rows], test_fraction)
    table = pa.Table.from_pylist([dict(row, split=side) for row, side in zip(rows, splits)])
    write_parquet_atomic(table, paths.curated_pairs_parquet)
    return table


# The tiny CPU model's fine-tuning run config (finetuned_clip), trained in seconds.
TINY = {"model": TINY_MODEL, "pretrained": None, "allow_random_init": True, "lock_text": False,
        "epochs": 8, "batch_size": 16,
        "lr": 5e-3, "warmup": 5, "workers": 0, "gpus": 0, "export": {"val_fraction": 0.25}, "log_every_n_steps": 5}


def open_clip_folder(folder, weights_name: str = "open_clip_model.safetensors"):
    """The tiny model as an open_clip model repository holds it (config + weights)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    register_model_configs()
    torch.manual_seed(1)  # not the weights load_clip's seeded random initialisation gives
    model = open_clip.create_model(TINY_MODEL)
    (folder / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": open_clip.get_model_config(TINY_MODEL), "preprocess_cfg": {}}))
    if weights_name.endswith(".safetensors"):
        save_file(model.state_dict(), folder / weights_name)
    else:
        torch.save(model.state_dict(), folder / weights_name)
    return model


# -- UT Zappos50K ---------------------------------------------------------------------------
HEADER = ["CID", "Category", "SubCategory", "HeelHeight", "Insole", "Closure", "Gender", "Material", "ToeStyle"]
# (CID, Category, SubCategory, brand folder, colour of the picture, metadata tail)
PRODUCTS = [
    ("100-1", "Boots", "Ankle", "Acme Co.", "black",
     ["1in - 1 3/4in", "", "Zipper", "Women", "Leather;Rubber", "Round Toe"]),
    ("100-2", "Boots", "Ankle", "Acme Co.", "brown", ["1in - 1 3/4in", "", "Zipper", "Women", "leather", ""]),
    ("200-7", "Shoes", "Sneakers and Athletic Shoes", "Runner", "white",
     ["Flat", "", "Lace up", "Men;Boys", "Mesh", "Round Toe"]),
    ("300-1", "Sandals", "Flat", "Beach", "yellow", ["Flat", "", "Buckle", "Girls", "Synthetic ; Leather", "Open Toe"]),
    ("400-4", "Slippers", "Slipper Flats", "Home", "red", ["", "", "", "Women", "Wool", ""]),
]


def build_zappos_fixture(root: Path, image_dir: str = "ut-zap50k-images-square") -> None:
    """Five good items plus one of each quirk: a duplicated CID row, an image without
    a row, a row without an image, and one CID's picture in two folders."""
    for cid, category, subcategory, brand, colour, _ in PRODUCTS:
        write_jpeg(root / image_dir / category / subcategory / brand / f"{cid.replace('-', '.')}.jpg", colour)
    write_jpeg(root / image_dir / "Shoes" / "Oxfords" / "Nobody" / "999.9.jpg", "blue")  # no row
    write_jpeg(root / image_dir / "Shoes" / "Loafers" / "Runner" / "200.7.jpg", "grey")  # 200-7 again
    rows = [[cid, category, subcategory, *tail] for cid, category, subcategory, _, _, tail in PRODUCTS]
    rows.append(rows[0][:2] + ["Knee High"] + rows[0][3:])  # duplicate CID 100-1, conflicting values
    rows.append(["555-5", "Shoes", "Heels", "", "", "", "Women", "Satin", ""])  # no image
    metadata = root / "ut-zap50k-data" / "meta-data.csv"
    metadata.parent.mkdir(parents=True)
    with open(metadata, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])


def write_jpeg(path: Path, colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (136, 136), colour).save(path, "JPEG")


ZAPPOS_ARCHIVE_FOLDERS = ("ut-zap50k-images-square", "ut-zap50k-data")
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"  # the header of a macOS `._*` file


def zappos_archives(root: Path) -> dict[str, bytes]:
    """build_zappos_fixture's copy, built at `root`, as the two official archives (file
    name -> zip bytes) zipped the way a Mac zips: see zip_folder."""
    build_zappos_fixture(root)
    return {f"{folder}.zip": zip_folder(root, folder) for folder in ZAPPOS_ARCHIVE_FOLDERS}


def zip_folder(root: Path, folder: str) -> bytes:
    """`root/folder` as a zip whose members start with `folder/`, JPEGs stored and the
    rest deflated, plus a Mac's litter: a `__MACOSX/` AppleDouble twin of every file,
    one `._*` file beside the first file, and a `.DS_Store`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        files = []
        for path in sorted((root / folder).rglob("*")):
            name = path.relative_to(root).as_posix()
            if path.is_dir():
                archive.write(path, name)  # folder entries, as zip tools write them
                continue
            files.append(PurePosixPath(name))
            archive.write(path, name, zipfile.ZIP_STORED if path.suffix == ".jpg" else zipfile.ZIP_DEFLATED)
            archive.writestr(f"__MACOSX/{files[-1].parent}/._{files[-1].name}", APPLE_DOUBLE)
        archive.writestr(f"{files[0].parent}/._{files[0].name}", APPLE_DOUBLE)
        archive.writestr(f"{folder}/.DS_Store", b"\x00\x00\x00\x01Bud1")
    return buffer.getvalue()


# -- the replay shop ---------------------------------------------------------------------
REPLAY_SEED = 7
REPLAY_PRODUCTS_PER_SITE = 30
FAKE_PAGE_SIZE = 10


class FakeRenderer:
    """A tiny site renderer: a JSON listing API at `/api/products?category=&page=`,
    a JSON product API at `/api/products/{id}`, images on `img.<site>.example`."""

    currency = "VND"
    categories = ("giay-nam", "giay-nu", "giay-cao-got")
    _paths = {"giay-nam": ("Giày - Dép nam",), "giay-nu": ("Giày - Dép nữ",),
              "giay-cao-got": ("Giày - Dép nữ", "Giày cao gót")}

    def __init__(self, site: str):
        self.site = site
        self.hosts = (f"{site}.example",)
        self.image_hosts = (f"img.{site}.example",)

    def category_path(self, category: str) -> tuple[str, ...]:
        return self._paths[category]

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        return f"https://{self.hosts[0]}/{slug}-p{product_id}.html"

    def image_url(self, token: str) -> str:
        return f"https://{self.image_hosts[0]}/{token[:2]}/{token}.jpg"

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        return distinct_numbers(rng, 10_000, 99_999, len(brands)), distinct_numbers(rng, 10_000, 99_999, len(brands))

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        if request.path == "/api/products":
            listed = catalog.listing(self.site, request.query.get("category", ""))
            page = int(request.query.get("page", "1"))
            chunk = listed[(page - 1) * FAKE_PAGE_SIZE:page * FAKE_PAGE_SIZE]
            return _json({"data": [{"id": p.product_id, "name": p.title} for p in chunk], "page": page})
        if request.path.startswith("/api/products/"):
            product = catalog.product(self.site, request.path.rsplit("/", 1)[1])
            if product is None:
                return None
            return _json({"id": product.product_id, "images": [i.url for i in product.images]},
                         product_id=product.product_id)
        return None

    def block_reply(self) -> ShopReply:
        return ShopReply(status=200, body=b'{"error": 90309999, "action_type": 2}')


def _json(payload: object, product_id: str | None = None) -> ShopReply:
    return ShopReply(body=json.dumps(payload, ensure_ascii=False).encode(), product_id=product_id)


def fake_renderers() -> dict[str, FakeRenderer]:
    return {site: FakeRenderer(site) for site in SITES}
