"""Helpers several site renderers share: JSON replies, query arguments, paging, the
plain 403 block page and numeric ids. Only logic that is the same for every site using it lives
here; site-specific shapes stay in the site modules."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import TypeVar

from replay_shop.sites.protocol import ShopReply

T = TypeVar("T")


def json_reply(payload: object, status: int = 200, *, product_id: str | None = None,
               missing_product: bool = False) -> ShopReply:
    """A JSON answer, UTF-8 and not ASCII-escaped, as the real APIs send it; `product_id`
    for the detail answer of that product, `missing_product` for the detail answer of none."""
    return ShopReply(status=status, body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                     product_id=product_id, missing_product=missing_product)


def int_arg(query: dict[str, str], name: str, default: int) -> int:
    """A non-negative integer query argument; anything else gives `default`."""
    value = query.get(name, "")
    return int(value) if value.isdigit() else default


def clamped_size(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    """A page-size argument clamped to 1..maximum, as the shops clamp rather than refuse."""
    return min(maximum, max(1, int_arg(query, name, default)))


def number(value: str) -> int | str:
    """Shop ids are JSON numbers; a non-numeric catalog id is passed through as is."""
    return int(value) if value.isdigit() else value


def page_slice(products: Sequence[T], page: int, size: int) -> Sequence[T]:
    """The 1-based `page` of `size` products; nothing for page 0 or below."""
    return products[(page - 1) * size: page * size] if page > 0 else products[:0]


def forbidden_reply() -> ShopReply:
    """A plain HTTP 403 page, for shops whose block answer nothing specific is known about."""
    return ShopReply(status=403, body=b"<html><head><title>403 Forbidden</title></head>"
                     b"<body><h1>403 Forbidden</h1></body></html>", content_type="text/html; charset=utf-8")


def distinct_numbers(rng: random.Random, low: int, high: int, count: int) -> list[str]:
    """`count` different decimal ids in [low, high), as shops number products."""
    return [str(x) for x in rng.sample(range(low, high), count)]


def shared_numbers(rng: random.Random, low: int, high: int, count: int, per_id: int) -> list[str]:
    """`count` decimal ids drawn from about count / per_id distinct ones: shop ids that
    several products of one seller share."""
    pool = distinct_numbers(rng, low, high, count // per_id + 1)
    return [rng.choice(pool) for _ in range(count)]
