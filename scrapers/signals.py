"""Project signals (Scrapy signals are plain unique objects)."""

# A page failed for good: kwargs site, url, reason, product_id (None for listings).
# Sent by the spiders' errback and by the malformed-response middleware; the journal
# pipeline records it as a rejection.
page_failed = object()
