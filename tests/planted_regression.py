"""A spider module for tests/test_crawl_e2e.py: Tiki's spider with a planted parser
regression (half the product pages hit a key the answer does not have), loaded in
place of scrapers.spiders with `-s SPIDER_MODULES=tests.planted_regression`."""

from __future__ import annotations

from scrapers.spiders.tiki import TikiSpider


class RegressedTikiSpider(TikiSpider):
    def parse_product(self, response, listing):
        if int(listing.product_id) % 2:
            self.load_json(response)["no_such_field"]
        yield from super().parse_product(response, listing)
