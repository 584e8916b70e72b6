"""Image hashing throughput: our curation path against a naive imagehash baseline.

Renders N good pictures from the replay shop's catalog into a temporary
content-addressed store, twice: as the shop serves them (320 px JPEGs) and re-encoded
at shop-photo size (`--side`, default 1000 px; real shop images are 800-1200 px,
which is where draft decoding pays). Then measures images/s of

- baseline: full decode + imagehash.phash + imagehash.dhash, one process;
- ours, hashes: curation.images.normalise (draft decode, resize, JPEG copy encoded)
  + curation.hashing.perceptual_hashes, one process: the like-for-like comparison;
- ours, image_features: the whole per-image step as the pipeline runs it (also
  writes each JPEG copy to the normalised store and the cache), one process and a
  process pool. File creation is most of the difference to the line above.

Every measurement runs in a fresh subprocess (imports and warm-up are outside the
timed part, pool start-up is inside), `--runs` times, median reported; peak memory is
the highest sum of RSS over the measured process and its descendants, sampled with
psutil every 20 ms (a pool's memory is the sum of its workers). Also printed: how
far our hashes (of the normalised image) are from imagehash's on the full decode.

    python benchmarks/hashing.py --images 500 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import imagehash  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

from clipshoe_pipeline.curation.config import NormaliseConfig
from clipshoe_pipeline.curation.features import default_workers, image_features  # noqa: E402
from clipshoe_pipeline.curation.hashing import as_int64, hamming, perceptual_hashes  # noqa: E402
from clipshoe_pipeline.curation.images import Normalised, normalise  # noqa: E402
from replay_shop.catalog import Catalog  # noqa: E402

SAMPLE_SECONDS = 0.02
VARIANTS = ("baseline", "hashes", "features", "features_pool")


# -- the image sets -------------------------------------------------------------------


def catalog_pictures(count: int, seed: int) -> list[bytes]:
    """`count` good (defect-free) pictures as the replay shop serves them."""
    catalog = Catalog(seed=seed, products_per_site=max(10, count // 10))
    pictures = []
    for site in catalog.sites:
        for product in catalog.products(site):
            pictures += [catalog.image_bytes(image) for image in product.images if image.defect is None]
            if len(pictures) >= count:
                return pictures[:count]
    raise SystemExit(f"the catalog holds only {len(pictures)} good pictures; raise products_per_site")


def at_side(data: bytes, side: int) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((side, round(side * image.height / image.width)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_store(pictures: list[bytes], store: Path) -> Path:
    """The crawler's layout: <sha[:2]>/<sha>.jpg; returns a manifest of (sha256, relative path)."""
    pairs = []
    for data in pictures:
        sha = hashlib.sha256(data).hexdigest()
        path = store / sha[:2] / f"{sha}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        pairs.append((sha, f"{sha[:2]}/{sha}.jpg"))
    manifest = store / "manifest.json"
    manifest.write_text(json.dumps(pairs))
    return manifest


# -- one measurement (in its own subprocess) ------------------------------------------


def naive_image_hashes(path: Path) -> tuple[imagehash.ImageHash, imagehash.ImageHash]:
    """The baseline for one image: full decode, then imagehash's pHash and dHash."""
    with Image.open(path) as image:
        image.load()
        return imagehash.phash(image), imagehash.dhash(image)


def naive_hashes(store: Path, pairs: list[tuple[str, str]]) -> None:
    for _, relpath in pairs:
        naive_image_hashes(store / relpath)


def our_hashes(store: Path, pairs: list[tuple[str, str]]) -> None:
    config = NormaliseConfig()
    for _, relpath in pairs:
        perceptual_hashes(normalise((store / relpath).read_bytes(), config).grey)


def measure(variant: str, store: Path, workers: int) -> dict:
    pairs = [tuple(pair) for pair in json.loads((store / "manifest.json").read_text())]
    peak = PeakRss()
    with tempfile.TemporaryDirectory(prefix="clipshoe-hash-bench-") as tmp, peak:
        start = time.perf_counter()
        if variant == "baseline":
            naive_hashes(store, pairs)
        elif variant == "hashes":
            our_hashes(store, pairs)
        else:
            image_features(store, Path(tmp) / "normalised", pairs, NormaliseConfig(), Path(tmp) / "cache.parquet",
                           workers=1 if variant == "features" else workers)
        seconds = time.perf_counter() - start
    return {"images": len(pairs), "seconds": seconds, "peak_rss_mib": peak.mib}


class PeakRss:
    """Highest total RSS of this process and its descendants while the block runs."""

    def __init__(self):
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def mib(self) -> float:
        return self.bytes / 2**20

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        while True:
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:  # a worker that just exited
                    pass
            self.bytes = max(self.bytes, total)
            if self._stop.wait(SAMPLE_SECONDS):
                return


def measured_in_subprocess(variant: str, store: Path, workers: int) -> dict:
    command = [sys.executable, __file__, "--measure", variant, "--store", str(store), "--workers", str(workers)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- hash agreement -------------------------------------------------------------------


def agreement(store: Path) -> dict:
    """Hamming distance between our hashes (of the normalised image) and imagehash's
    (of the full decode): 0 when normalising changes nothing, small when it resizes."""
    pairs = json.loads((store / "manifest.json").read_text())
    distances = []
    for _, relpath in pairs:
        data = (store / relpath).read_bytes()
        result = normalise(data)
        assert isinstance(result, Normalised), relpath
        with Image.open(io.BytesIO(data)) as image:
            naive = (as_int64(int(str(imagehash.phash(image)), 16)), as_int64(int(str(imagehash.dhash(image)), 16)))
        distances.append([hamming(a, b) for a, b in zip(perceptual_hashes(result.image), naive)])
    return {name: {"mean": statistics.fmean(d[i] for d in distances), "max": max(d[i] for d in distances)}
            for i, name in enumerate(("phash", "dhash"))}


# -- driver ---------------------------------------------------------------------------


def benchmark(images: int, runs: int, side: int, workers: int, seed: int) -> None:
    pictures = catalog_pictures(images, seed)
    sets = {"replay 320 px": pictures, f"shop-size {side} px": [at_side(data, side) for data in pictures]}
    print(f"# Image hashing: {images} images, median of {runs} runs, {workers} workers for the pool")
    print(f"{platform.python_version()} on {platform.machine()}, {psutil.cpu_count()} CPUs\n")
    print("| image set | path | images/s | speed-up vs baseline | peak RSS (MiB, all processes) |")
    print("|---|---|---|---|---|")
    agreements = {}
    with tempfile.TemporaryDirectory(prefix="clipshoe-hash-bench-") as tmp:
        for index, (name, data) in enumerate(sets.items()):
            store = Path(tmp) / f"store{index}"
            write_store(data, store)
            results = {variant: [measured_in_subprocess(variant, store, workers) for _ in range(runs)]
                       for variant in VARIANTS}
            rates = {v: statistics.median(r["images"] / r["seconds"] for r in rs) for v, rs in results.items()}
            labels = {"baseline": "baseline: full decode + imagehash", "hashes": "ours, hashes, 1 process",
                      "features": "ours, image_features, 1 process",
                      "features_pool": f"ours, image_features, pool of {workers}"}
            for variant, measured in results.items():
                rss = statistics.median(r["peak_rss_mib"] for r in measured)
                print(f"| {name} | {labels[variant]} | {rates[variant]:.0f} | "
                      f"{rates[variant] / rates['baseline']:.2f}x | {rss:.0f} |")
            agreements[name] = agreement(store)
    print("\nHamming distance, our hash of the normalised image vs imagehash of the full decode:\n")
    print("| image set | pHash mean | pHash max | dHash mean | dHash max |")
    print("|---|---|---|---|---|")
    for name, found in agreements.items():
        print(f"| {name} | {found['phash']['mean']:.2f} | {found['phash']['max']} | "
              f"{found['dhash']['mean']:.2f} | {found['dhash']['max']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--side", type=int, default=1000, help="longer side of the shop-size set, px")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: one measurement
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.store, args.workers)))
    else:
        benchmark(args.images, args.runs, args.side, args.workers, args.seed)


if __name__ == "__main__":
    main()
