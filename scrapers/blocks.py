"""Recognising anti-bot answers that arrive dressed as success.

Shopee answers HTTP 200 with `{"error": 90309999, ...}`; Lazada answers with a
`rgv587_flag` JSON or a captcha ("punish") page. Such bodies must never be parsed
as an empty listing: they are counted and retried with backoff.
"""

from __future__ import annotations

import json

from scrapy.http import Response

# Shopee anti-crawler error codes seen in the wild (90309999 is the common one).
SHOPEE_BLOCK_ERRORS = {90309999, 90309996}
_LAZADA_MARKERS = (b"rgv587_flag", b"/_____tmd_____/punish", b"captcha-interception")


def detect_block(response: Response) -> str | None:
    """A short reason if `response` is a block page, else None.

    Decided by the body, not the host: a CDN or a redirect target can carry the
    same answer, and the markers are specific enough not to misfire."""
    if response.status in (403, 407):
        return f"http_{response.status}"
    head = response.body[:4096]
    if b"90309" in head and head.lstrip().startswith(b"{"):
        try:
            error = json.loads(response.body).get("error")
        except (ValueError, AttributeError):
            return None
        if error in SHOPEE_BLOCK_ERRORS:
            return f"shopee_{error}"
    if any(marker in head for marker in _LAZADA_MARKERS):
        return "lazada_captcha"
    return None
