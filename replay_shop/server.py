"""The replay shop's HTTP server: the five synthetic shops on one loopback port.

A request for `https://HOST/PATH?Q` arrives as `/HOST/PATH?Q` (see scrapers/replay.py).
Image CDN hosts are answered from the catalog; API and page hosts by the site's
renderer. On top, the server plants the faults of a real crawl (429, 500, slow
answers, block pages, malformed JSON, connections dropped mid-image), decided
deterministically per (seed, URL, attempt) and capped per URL, so a crawler that
retries enough still collects everything and a test can tell exactly what it saw.
The detail faults instead take some products' detail answers away for good (a 404
or the site's block answer, every attempt), decided per (seed, site, product), so a
test can tell which products only their listing entry describes (`lost_detail`).

Detail answers and images of the sites in `VALIDATED_SITES` carry an ETag and a
Last-Modified, and a request whose If-None-Match / If-Modified-Since still matches is
answered 304 with no body, so a recrawl can be checked for what it fetched again.
`set_epoch` moves a running shop to another epoch of its catalog (see catalog.py).

Use `running_shop(...)` in tests and benchmarks (a background thread with its own
event loop) and `serve_forever(...)` for the command line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.helpers import ETAG_ANY
from aiohttp.log import access_logger

from replay_shop.catalog import Catalog, epoch_time
from replay_shop.records import Faults, ShopImage
from replay_shop.pictures import content_type
from replay_shop.sites.protocol import ShopReply, ShopRequest, SiteRenderer

ROBOTS_TXT = "User-agent: *\nAllow: /\n"

# Order matters: a request's roll falls into the first kind whose cumulative rate covers it.
FAULT_KINDS = ("http_429", "http_500", "slow", "block", "malformed_json", "truncated_image")
_ALWAYS_APPLICABLE = frozenset(("http_429", "http_500", "slow", "block"))
# Likewise for a product's roll, once per product.
DETAIL_FAULT_KINDS = ("detail_http_404", "detail_block")
# Sites whose detail answers and images carry validators. No captured real header
# says which shops send them (docs/sites.md), so two are chosen as the testable case.
VALIDATED_SITES = frozenset(("tiki", "sendo"))
REQUEST_KINDS = ("listing", "detail", "image")


@dataclass(frozen=True)
class _Validators:
    """What an answer carries for conditional requests."""

    etag: str  # unquoted
    last_modified: datetime

    def matched_by(self, request: web.Request) -> bool:
        """Whether the client's copy is current. If-None-Match, when sent, decides
        alone (RFC 9110), compared weakly; otherwise If-Modified-Since does."""
        tags = request.if_none_match
        if tags is not None:
            return any(tag.value in (self.etag, ETAG_ANY) for tag in tags)
        since = request.if_modified_since
        return since is not None and self.last_modified <= since

    def stamped(self, response: web.Response) -> web.Response:
        response.etag = self.etag
        response.last_modified = self.last_modified
        return response


class ReplayShop:
    """The server and its bookkeeping: `stats` counts requests per host and per kind
    (listing, detail, image: answers of the shop's renderers and CDNs, faulted or
    not), faults per kind, images served, 304 answers per kind (`not_modified`) and
    404s for what the shop does not know; `url` is set once started."""

    def __init__(self, catalog: Catalog, faults: Faults = Faults(), host: str = "127.0.0.1", port: int = 0,
                 access_log: bool = False):
        self.catalog = catalog
        self.access_log = access_log
        self.faults = faults
        self.host = host
        self.port = port
        self.url = ""
        self.stats: dict[str, Any] = {"requests": 0, "requests_by_host": {}, "faults": {}, "images": 0,
                                      "not_found": 0, "requests_by_kind": dict.fromkeys(REQUEST_KINDS, 0),
                                      "not_modified": {"detail": 0, "image": 0}}
        self._renderer_of_host: dict[str, SiteRenderer] = {}
        self._image_hosts: dict[str, SiteRenderer] = {}
        for renderer in catalog.renderers.values():
            self._renderer_of_host.update(dict.fromkeys(renderer.hosts, renderer))
            self._image_hosts.update(dict.fromkeys(renderer.image_hosts, renderer))
        self._attempts: dict[str, int] = {}  # URL key -> requests so far
        self._faults_in_row: dict[str, int] = {}  # URL key -> consecutive faulted answers
        self._ground_truth_body: bytes | None = None
        self._runner: web.AppRunner | None = None
        self.app = self._make_app()

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> str:
        # Access log off by default: formatting a line per request costs more than answering it.
        self._runner = web.AppRunner(self.app, access_log=access_logger if self.access_log else None,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def set_epoch(self, epoch: int) -> None:
        """Serve the catalog's `epoch` from now on (stats and fault counts go on)."""
        self.catalog = self.catalog.at_epoch(epoch)
        self._ground_truth_body = None

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_shop/stats", self._stats)
        app.router.add_get("/_shop/ground_truth", self._ground_truth)
        app.router.add_route("*", "/_shop/epoch", self._epoch)
        app.router.add_route("*", "/{host}/{path:.*}", self._handle)
        return app

    # -- routes -------------------------------------------------------------------------
    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    async def _ground_truth(self, request: web.Request) -> web.Response:
        if self._ground_truth_body is None:
            self._ground_truth_body = json.dumps(self.catalog.ground_truth(), ensure_ascii=False).encode()
        return web.Response(body=self._ground_truth_body, content_type="application/json")

    async def _epoch(self, request: web.Request) -> web.Response:
        """GET: the epoch served; POST ?epoch=N: move to epoch N (for a shop run as a command)."""
        if request.method == "POST":
            epoch = request.query.get("epoch", "")
            if not epoch.isdigit() or int(epoch) < 1:
                return web.json_response({"error": "epoch must be a whole number from 1"}, status=400)
            self.set_epoch(int(epoch))
        elif request.method != "GET":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        return web.json_response({"epoch": self.catalog.epoch})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = request.match_info["host"]
        path = "/" + request.match_info["path"]
        self._count(self.stats["requests_by_host"], host)
        self.stats["requests"] += 1
        known = host in self._renderer_of_host or host in self._image_hosts
        if path == "/robots.txt":
            return web.Response(text=ROBOTS_TXT) if known else self._not_found()
        key = f"{request.method} {request.raw_path}"  # raw_path is /HOST/PATH?QUERY
        image = self._image(request, host, path)
        if image is not None:
            return await self._serve_image(request, key, host, image)
        renderer = self._renderer_of_host.get(host)
        if renderer is None:
            return self._not_found()
        reply = renderer.handle(self.catalog, ShopRequest(host=host, path=path, query=_first_values(request),
                                                          headers={k.lower(): v for k, v in request.headers.items()}))
        if reply is None:
            return self._not_found()
        self._count(self.stats["requests_by_kind"], reply.kind)
        lost = self.lost_detail(renderer.site, reply.product_id) if reply.product_id is not None else None
        if lost is not None:  # every attempt: the per-URL faults and their cap never apply
            self._count_fault(lost)
            if lost == "detail_block":
                return self._error_reply("block", renderer)
            return web.Response(status=404, text="Not Found")
        validators = self._detail_validators(renderer, reply)
        if validators is not None and validators.matched_by(request):
            return await self._not_modified(key, "detail", validators, renderer)
        fault = self._fault(key, {"malformed_json"} if reply.is_json else set())
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_seconds)
        elif fault == "malformed_json":
            return web.Response(status=reply.status, body=reply.body[: len(reply.body) // 2],
                                headers={"Content-Type": reply.content_type})
        elif fault is not None:
            return self._error_reply(fault, renderer)
        response = web.Response(status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type})
        return validators.stamped(response) if validators is not None else response

    def _image(self, request: web.Request, host: str, path: str) -> ShopImage | None:
        if host in self._renderer_of_host and host not in self._image_hosts:
            return None
        query = f"?{request.query_string}" if request.query_string else ""
        image = self.catalog.image_for(f"https://{host}{path}{query}")
        # The decoded path may differ from the URL the shop printed (percent-escapes, "//").
        return image or self.catalog.image_for("https:/" + request.raw_path)

    async def _serve_image(self, request: web.Request, key: str, host: str, image: ShopImage) -> web.StreamResponse:
        self._count(self.stats["requests_by_kind"], "image")
        validators = self._image_validators(host, image)
        if validators is not None and validators.matched_by(request):
            return await self._not_modified(key, "image", validators, None)
        loop = asyncio.get_running_loop()
        # Rendering runs off the event loop: Pillow releases the GIL, and a planted
        # huge image must not stall every other connection.
        body = await loop.run_in_executor(None, self.catalog.image_bytes, image)
        ctype = content_type(image.fmt, image.defect)
        fault = self._fault(key, {"truncated_image"} if len(body) > 1 else set())
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_seconds)
        elif fault == "truncated_image":
            return await self._truncated(request, body, ctype)
        elif fault is not None:
            # CDNs refuse with a bare 403, not with the shop API's block body.
            return self._error_reply(fault, None)
        self.stats["images"] += 1
        response = web.Response(body=body, headers={"Content-Type": ctype})
        return validators.stamped(response) if validators is not None else response

    # -- validators ---------------------------------------------------------------------
    def _detail_validators(self, renderer: SiteRenderer, reply: ShopReply) -> _Validators | None:
        """A hash of the body, and the epoch the product last changed."""
        if renderer.site not in VALIDATED_SITES or reply.product_id is None or reply.status != 200:
            return None
        return _Validators(etag=hashlib.blake2b(reply.body, digest_size=16).hexdigest(),
                           last_modified=epoch_time(self.catalog.modified_epoch(renderer.site, reply.product_id)))

    def _image_validators(self, host: str, image: ShopImage) -> _Validators | None:
        """A hash of the image record rather than of the body: the record determines
        the bytes, and a 304 then renders nothing."""
        renderer = self._image_hosts.get(host)
        if renderer is None or renderer.site not in VALIDATED_SITES:
            return None
        return _Validators(etag=hashlib.blake2b(repr(image).encode(), digest_size=16).hexdigest(),
                           last_modified=epoch_time(self.catalog.image_modified_epoch(image)))

    async def _not_modified(self, key: str, kind: str, validators: _Validators,
                            renderer: SiteRenderer | None) -> web.Response:
        """A 304, unless the URL's fault roll says otherwise: a bodiless answer can
        still be throttled, refused or slow, but never malformed or truncated."""
        fault = self._fault(key, set())
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_seconds)
        elif fault is not None:
            return self._error_reply(fault, renderer)
        self._count(self.stats["not_modified"], kind)
        return validators.stamped(web.Response(status=304))

    # -- faults -------------------------------------------------------------------------
    def _fault(self, key: str, applicable: set[str]) -> str | None:
        """The fault this answer carries, if any: rolled from (seed, URL, attempt),
        never more than `max_per_url` in a row for one URL."""
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        kind = self._roll(key, attempt)
        in_row = self._faults_in_row.get(key, 0)
        if kind is None or not (kind in _ALWAYS_APPLICABLE or kind in applicable) or in_row >= self.faults.max_per_url:
            self._faults_in_row[key] = 0
            return None
        # A slow answer is still a proper one: it does not count toward the cap.
        self._faults_in_row[key] = 0 if kind == "slow" else in_row + 1
        self._count_fault(kind)
        return kind

    def lost_detail(self, site: str, product_id: str) -> str | None:
        """The detail fault that holds for good for a product (`detail_http_404`,
        `detail_block`), if any: rolled once from (seed, site, product), so every
        attempt at its detail answer carries it, and a test can ask which products do."""
        return self._kind_of(f"{self.catalog.seed}:detail:{site}:{product_id}", DETAIL_FAULT_KINDS)

    def _roll(self, key: str, attempt: int) -> str | None:
        return self._kind_of(f"{self.catalog.seed}:{key}:{attempt}", FAULT_KINDS)

    def _kind_of(self, seed_text: str, kinds: tuple[str, ...]) -> str | None:
        """The kind a uniform roll drawn from `seed_text` falls into by the kinds' rates."""
        digest = hashlib.blake2b(seed_text.encode(), digest_size=8).digest()
        roll = int.from_bytes(digest, "big") / 2**64
        threshold = 0.0
        for kind in kinds:
            threshold += getattr(self.faults, kind)
            if roll < threshold:
                return kind
        return None

    def _count_fault(self, kind: str) -> None:
        self._count(self.stats["faults"], kind)

    @staticmethod
    def _count(counts: dict[str, int], kind: str) -> None:
        counts[kind] = counts.get(kind, 0) + 1

    def _error_reply(self, fault: str, renderer: SiteRenderer | None) -> web.Response:
        if fault == "http_429":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "0"})
        if fault == "block" and renderer is not None:
            reply: ShopReply = renderer.block_reply()
            return web.Response(status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type})
        if fault == "block":
            return web.Response(status=403, text="Forbidden")
        return web.Response(status=500, text="Internal Server Error")

    @staticmethod
    async def _truncated(request: web.Request, body: bytes, ctype: str) -> web.StreamResponse:
        """Announce the full length, send half, drop the connection: the client sees data loss."""
        response = web.StreamResponse(headers={"Content-Type": ctype})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()  # close, not abort: the half already written still goes out
        return response

    def _not_found(self) -> web.Response:
        self.stats["not_found"] += 1
        return web.Response(status=404, text="Not Found")


def _first_values(request: web.Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in request.query.items():
        query.setdefault(name, value)
    return query


@contextmanager
def running_shop(catalog: Catalog, faults: Faults = Faults(), host: str = "127.0.0.1",
                 port: int = 0) -> Iterator[ReplayShop]:
    """A shop serving on a background thread (its own event loop) for the `with`
    block; yields the ReplayShop (`.url`, `.stats`, `.catalog`)."""
    shop = ReplayShop(catalog, faults=faults, host=host, port=port)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="replay-shop", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(shop.start(), loop).result(timeout=30)
        yield shop
    finally:
        try:
            asyncio.run_coroutine_threadsafe(shop.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()


def serve_forever(catalog: Catalog, *, host: str, port: int, faults: Faults = Faults(),
                  on_ready: Callable[[ReplayShop], None] | None = None, access_log: bool = False) -> None:
    """Serve in the calling thread until interrupted (Ctrl-C)."""

    async def serve() -> None:
        shop = ReplayShop(catalog, faults=faults, host=host, port=port, access_log=access_log)
        await shop.start()
        try:
            if on_ready is not None:
                on_ready(shop)
            await asyncio.Event().wait()
        finally:
            await shop.stop()

    # Ctrl-C must stop the shop whatever signal state the parent process passed on
    # (an ignored or blocked SIGINT is inherited across exec).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
