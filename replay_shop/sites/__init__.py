"""Per-site renderers: each turns the synthetic catalog into one shop's real
endpoints and response shapes (the spiders in scrapers/spiders/ parse the same shapes).

A renderer is a module-level object implementing `SiteRenderer`. The server routes
`/HOST/PATH?QUERY` to the renderer that lists HOST in `hosts`; images on
`image_hosts` are served by the server itself from the catalog.
"""

from __future__ import annotations

from replay_shop.sites.protocol import SiteRenderer


def renderers() -> dict[str, SiteRenderer]:
    """All five renderers by site name (imported lazily: each module is independent)."""
    from replay_shop.sites.lazada import RENDERER as lazada
    from replay_shop.sites.sendo import RENDERER as sendo
    from replay_shop.sites.shopee import RENDERER as shopee
    from replay_shop.sites.tiki import RENDERER as tiki
    from replay_shop.sites.zalora import RENDERER as zalora

    return {r.site: r for r in (tiki, sendo, shopee, lazada, zalora)}
