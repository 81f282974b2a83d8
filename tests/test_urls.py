"""The URL policy: only absolute http(s) links with a host survive, as a browser would read them."""

import pytest

from urls import safe_url

HOSTILE = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "jav\tascript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "//evil.example/x",
    "/relative/path",
    "https:no-host",
    "http://[::1",
    "",
    None,
    5,
    ["https://example.com"],
    "https://exa\x00mple.com/",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_but_an_absolute_http_url_is_dropped(value):
    assert safe_url(value) is None


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://www.example.com/a?b=1#c", "https://www.example.com/a?b=1#c"),
        ("  http://example.com/\n", "http://example.com/"),
        ("HTTPS://Example.com/Path", "https://Example.com/Path"),
        ("ht\ttps://example.com/", "https://example.com/"),
    ],
)
def test_http_and_https_links_are_kept_cleaned(value, kept):
    assert safe_url(value) == kept
