"""Is an HTTP response a filter's block page? A pure heuristic on status, headers and body.

Without knowing what the target serves, only specific signs count. A response is judged a
block page when (first rule that holds, see :func:`judge_response`):

1. The user said what to expect: ``expect_status`` differs from the status, or
   ``expect_text`` is missing from the body (case-sensitive). When expectations are given
   and met, the response is clean and the heuristic below is not applied.
2. Status 451 (Unavailable For Legal Reasons, RFC 7725).
3. A redirect (3xx) to another host that is an IP address, a configured sinkhole, or whose
   URL contains a block word (:data:`REDIRECT_WORDS`). A redirect to another *name*
   alone is normal (``teams.microsoft.com`` → ``login.microsoftonline.com``).
4. A page is a *candidate* only when its visible text (tags, scripts and styles removed,
   first 64 KiB of body) is short — under :data:`SHORT_PAGE_CHARS` characters: block pages
   are a few sentences, an article about filtering is not — or names a filter product
   (:data:`FILTER_PRODUCTS`). A candidate is a block page when its ``<title>`` contains a
   block word (:data:`TITLE_WORDS`), or, for a page without a title, its first ``<h1>``
   does ("Blocked by Securly" pages have only a heading), or its text contains a block
   phrase (:data:`BLOCK_PHRASES`). Plain "Forbidden" or "Access Denied" do not count: web
   servers and CDNs use them for their own refusals.

Anything else is not a block page. The evidence string says which rule matched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.probes.net import is_ip_literal

BODY_LIMIT = 64 * 1024
SHORT_PAGE_CHARS = 3000

TITLE_WORDS = ("blocked", "blocking", "web filter", "content filter", "url filter",
               "internet filter", "filtered", "access restricted", "site restricted",
               "restricted site", "prohibited")
BLOCK_PHRASES = (
    "this site has been blocked", "this website has been blocked", "this page has been blocked",
    "this url has been blocked", "this site is blocked", "this website is blocked",
    "this page is blocked", "this url is blocked", "site blocked", "page blocked",
    "website blocked", "request blocked", "access blocked", "blocked by your",
    "blocked by the", "blocked by policy", "blocked due to", "blocked category",
    "category is blocked", "categorised as", "categorized as", "web filter",
    "content filter", "url filter", "internet filter", "filtered by", "has been restricted",
    "restricted by your", "acceptable use policy", "denied by policy", "not allowed by your",
)
FILTER_PRODUCTS = (
    "fortiguard", "fortinet", "fortigate", "smoothwall", "lightspeed", "securly",
    "netsweeper", "iboss", "zscaler", "cisco umbrella", "opendns", "websense", "forcepoint",
    "bloxx", "censornet", "contentkeeper", "goguardian", "linewize", "sophos",
    "palo alto networks", "barracuda", "untangle", "squidguard", "e2guardian",
    "dansguardian", "netsmart", "senso", "watchguard", "sonicwall", "checkpoint",
    "check point", "mcafee web gateway", "skyhigh", "cloudflare gateway",
)
REDIRECT_WORDS = ("block", "denied", "filter", "restricted", "policy", "forbidden", "warn")

_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]+>", re.I | re.S)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1\s*>", re.I | re.S)
_SPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(text)).strip()


def page_title(body: str) -> str:
    match = _TITLE.search(body)
    return _clean(match.group(1)) if match else ""


def page_heading(body: str) -> str:
    """The text of the first ``<h1>`` (tags inside it removed), or ""."""
    match = _H1.search(body)
    return visible_text(match.group(1)) if match else ""


def visible_text(body: str) -> str:
    return _clean(_TAGS.sub(" ", body))


def decode_body(body: bytes, content_type: str = "") -> str:
    charset = "utf-8"
    match = re.search(r"charset=\"?([\w.-]+)", content_type, re.I)
    if match:
        charset = match.group(1)
    try:
        return body[:BODY_LIMIT].decode(charset, errors="replace")
    except LookupError:
        return body[:BODY_LIMIT].decode("utf-8", errors="replace")


def _first(haystack: str, needles: tuple[str, ...]) -> str | None:
    """The first needle found anywhere in ``haystack`` (case-insensitive)."""
    low = haystack.lower()
    return next((n for n in needles if n in low), None)


def _first_words(haystack: str, needles: tuple[str, ...]) -> str | None:
    """The first needle found as whole words ("senso" does not match "sensor")."""
    low = haystack.lower()
    return next((n for n in needles if re.search(rf"\b{re.escape(n)}\b", low)), None)


def suspicious_redirect(location: str, target_host: str,
                        sinkholes: Collection[str] = ()) -> str | None:
    """Evidence that a redirect leads to a filter rather than the service, or None."""
    parts = urlsplit(location)
    host = (parts.hostname or "").lower()
    if not host or host == target_host.lower():
        return None  # relative or same-host redirect: the service's own business
    if host in sinkholes:
        return f"redirect to sinkhole {host}"
    if is_ip_literal(host) and not is_ip_literal(target_host):
        return f"redirect to address {host}"
    word = _first(location, REDIRECT_WORDS)
    if word:
        return f"redirect to {host} ({word!r} in the URL)"
    return None


@dataclass(frozen=True)
class Expectation:
    status: int | None = None
    text: str | None = None

    @property
    def given(self) -> bool:
        return self.status is not None or self.text is not None


@dataclass(frozen=True)
class PageVerdict:
    blocked: bool
    evidence: str
    """Rule and matched words; for a clean page, what was seen."""
    detail: str
    """Machine-readable detail for the method string (``status=451``, ``title``...)."""


def judge_response(status: int, location: str, body: str, target_host: str,
                   expect: Expectation = Expectation(),
                   sinkholes: Collection[str] = ()) -> PageVerdict:
    """Apply the rules of the module docstring to one response (``body`` decoded)."""
    if expect.given:
        if expect.status is not None and status != expect.status:
            return PageVerdict(True, f"HTTP {status}, expected {expect.status}",
                               f"expect_status={expect.status},got={status}")
        if expect.text is not None and expect.text not in body:
            return PageVerdict(True, f"expected text {expect.text!r} not in the body",
                               "expect_text_missing")
        return PageVerdict(False, f"HTTP {status} with the expected content", "expected")
    if status == 451:
        return PageVerdict(True, "HTTP 451 Unavailable For Legal Reasons", "status=451")
    if 300 <= status < 400:
        if location:
            evidence = suspicious_redirect(location, target_host, sinkholes)
            if evidence:
                host = urlsplit(location).hostname or ""
                return PageVerdict(True, evidence, f"redirect={host}")
        return PageVerdict(False, f"HTTP {status} redirect to {location or '(no Location)'}",
                           "redirect")
    title, text = page_title(body), visible_text(body)
    product = _first_words(text, FILTER_PRODUCTS)
    if product is None and len(text) >= SHORT_PAGE_CHARS:
        return PageVerdict(False, f"HTTP {status}, a long page naming no filter product",
                           f"status={status}")
    why = f"names {product!r}" if product else f"short page ({len(text)} characters)"
    tail = f",product={product}" if product else ""
    word = _first_words(title, TITLE_WORDS)
    if word:
        return PageVerdict(True, f"{why}, title {title!r} contains {word!r}",
                           f"title={word}{tail}")
    heading = "" if title else page_heading(body)
    word = _first_words(heading, TITLE_WORDS)
    if word:
        return PageVerdict(True, f"{why}, no title, heading {heading!r} contains {word!r}",
                           f"heading={word}{tail}")
    phrase = _first_words(text, BLOCK_PHRASES)
    if phrase:
        return PageVerdict(True, f"{why}, says {phrase!r}", f"phrase={phrase}{tail}")
    return PageVerdict(False, f"HTTP {status}, no block-page signs", f"status={status}")
