"""Plain text from shop HTML, the one definition the spiders and curation share.

The spiders turn shop HTML into item text and curation turns item text into captions
with this function, so both agree on what the plain text of a fragment is: scripts and
styles dropped with their content, block tags as line breaks, entities decoded,
Unicode NFC (Vietnamese has composed and decomposed spellings of the same letters).
"""

from __future__ import annotations

import html
import re
import unicodedata

from w3lib.html import remove_comments, remove_tags, remove_tags_with_content

_BLOCK_TAGS = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(value: object) -> str:
    """Plain text from an HTML fragment: scripts/styles dropped with their content,
    block tags turned into line breaks, entities decoded, NFC, whitespace collapsed."""
    if value is None:
        return ""
    text = str(value)
    if text in ("None", "null"):  # nulls printed through Python/JS by some sources
        return ""
    text = remove_comments(text)
    text = remove_tags_with_content(text, which_ones=("script", "style", "noscript", "iframe"))
    text = _BLOCK_TAGS.sub("\n", text)
    text = remove_tags(text)
    text = html.unescape(html.unescape(text))  # shops often double-escape
    text = unicodedata.normalize("NFC", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
