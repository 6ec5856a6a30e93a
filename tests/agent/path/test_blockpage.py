import pytest

from agent.probes.blockpage import (
    Expectation,
    decode_body,
    judge_response,
    page_heading,
    page_title,
    suspicious_redirect,
    visible_text,
)
from tests.agent.path.conftest import FIXTURES


def page(name: str) -> str:
    return (FIXTURES / "pages" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "status", "detail"), [
    ("filter-fortiguard-like.html", 200, "title=blocked,product=fortiguard"),
    ("filter-school-generic.html", 200, "title=access restricted"),
    ("filter-vendor-no-title.html", 403, "phrase=categorized as,product=smoothwall"),
    ("filter-heading-only.html", 403, "heading=blocked,product=securly"),
])
def test_block_pages_are_recognised(name: str, status: int, detail: str):
    verdict = judge_response(status, "", page(name), "quiz.example")
    assert (verdict.blocked, verdict.detail) == (True, detail)


@pytest.mark.parametrize(("name", "status"), [
    ("clean-nginx-403.html", 403),
    ("clean-cdn-access-denied.html", 403),
    ("clean-article-about-filters.html", 200),
    ("clean-spa-shell.html", 200),
])
def test_pages_a_clean_path_serves_are_not_flagged(name: str, status: int):
    verdict = judge_response(status, "", page(name), "quiz.example")
    assert verdict.blocked is False, verdict.evidence
    assert verdict.detail == f"status={status}"


def test_long_article_is_judged_by_length():
    verdict = judge_response(200, "", page("clean-article-about-filters.html"), "news.example")
    assert verdict.evidence == "HTTP 200, a long page naming no filter product"


def test_status_451():
    verdict = judge_response(451, "", "", "quiz.example")
    assert (verdict.blocked, verdict.detail) == (True, "status=451")


@pytest.mark.parametrize(("location", "detail"), [
    ("http://10.0.0.1:8015/warning?cat=games", "redirect=10.0.0.1"),
    ("https://blockpage.filter.example/?url=quiz", "redirect=blockpage.filter.example"),
    ("http://sink.example/", "redirect=sink.example"),
])
def test_suspicious_redirects(location: str, detail: str):
    verdict = judge_response(302, location, "", "quiz.example", sinkholes={"sink.example"})
    assert (verdict.blocked, verdict.detail) == (True, detail)


@pytest.mark.parametrize("location", [
    "/login", "https://quiz.example/en/", "https://login.microsoftonline.com/common/oauth2",
    "",
])
def test_ordinary_redirects_are_clean(location: str):
    assert judge_response(301, location, "", "quiz.example").blocked is False


def test_redirect_between_addresses_is_not_suspicious():
    assert suspicious_redirect("http://10.0.0.2/", "10.0.0.1") is None


def test_expectations_decide_when_given():
    blocked_page = page("filter-fortiguard-like.html")
    assert judge_response(200, "", "Welcome to the quiz", "q", Expectation(200, "Welcome")) \
        .blocked is False
    # the user's expectation overrides the heuristic both ways
    assert judge_response(200, "", blocked_page, "q", Expectation(text="Blocked")).blocked \
        is False
    wrong_status = judge_response(403, "", "Welcome", "q", Expectation(status=200))
    assert (wrong_status.blocked, wrong_status.detail) == (True, "expect_status=200,got=403")
    missing = judge_response(200, "", "Something else", "q", Expectation(text="Welcome"))
    assert (missing.blocked, missing.detail) == (True, "expect_text_missing")


def test_words_match_whole_words_only():
    text = "<title>Sensor dashboard</title><p>Our sensors are unblocked.</p>"
    assert judge_response(200, "", text, "q").blocked is False


def test_title_and_visible_text():
    body = "<title> Web &amp; Page\nBlocked </title><script>x='blocked'</script><p>Hi <b>there</b>"
    assert page_title(body) == "Web & Page Blocked"
    assert visible_text(body) == "Web & Page Blocked Hi there"


def test_heading_counts_only_without_a_title():
    assert page_heading("<h1 class=x>Site <b>Blocked</b></h1><h1>Other</h1>") == "Site Blocked"
    assert page_heading("<p>no heading</p>") == ""
    titled = "<title>Quiz night</title><h1>Blocked moves in chess</h1><p>Learn them.</p>"
    assert judge_response(200, "", titled, "q").blocked is False


def test_decode_body_uses_the_charset():
    assert decode_body("café".encode("latin-1"), "text/html; charset=ISO-8859-1") == "café"
    assert decode_body(b"caf\xc3\xa9", "text/html; charset=nonsense") == "café"
