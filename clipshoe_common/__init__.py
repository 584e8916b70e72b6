"""What the crawl, curation and training layers all use, and nothing else: atomic
and content-addressed file writes, text normalisation, and where the project lives.

It imports none of `scrapers`, `clipshoe_pipeline` or `replay_shop`, so any of them
can depend on it without depending on each other.
"""

from pathlib import Path

#: The repository root: scrapy.cfg (a crawl subprocess runs from here) and the
#: training model configs are found relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
