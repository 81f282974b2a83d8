"""The one URL policy for anything that came from outside (feeds, image APIs, models, card data).

A link the site prints is either an absolute http(s) URL with a host, or it is not printed
at all. Browsers ignore ASCII whitespace and control characters inside a scheme and fold its
case (`jav&#9;ascript:`, ` JavaScript:`), so the check runs on the URL as a browser would read
it, not as the feed wrote it. Relative and scheme-relative URLs from outside are dropped too:
their meaning depends on the page that prints them, which the sender does not know.

Used twice on purpose: where outside data enters (so the database never holds a bad link)
and where a template prints an href/src (so a row written before this policy, or by a path
that forgot it, still cannot render one).
"""

import re
import urllib.parse

ALLOWED_SCHEMES = ("http", "https")
# C0 controls, space and DEL: browsers strip or skip these inside a URL's scheme.
_STRIPPED = "".join(chr(c) for c in range(0x21)) + "\x7f"
_DROP_EVERYWHERE = str.maketrans("", "", "\t\n\r")


def safe_url(value):
    """`value` cleaned if it is an absolute http(s) URL with a host; otherwise None.

    Leading and trailing whitespace and control characters are stripped, tabs and newlines
    inside are removed (as the URL parser in every browser does), and the scheme is compared
    case-insensitively. The returned string is what should be stored and printed.
    """
    if not isinstance(value, str):
        return None
    url = value.strip(_STRIPPED).translate(_DROP_EVERYWHERE)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not host:
        return None
    # urlsplit folds the scheme's case; the stored URL should read the same way.
    return parts.scheme + url[len(parts.scheme) :]


def is_safe_url(value):
    """True when safe_url would keep `value`."""
    return safe_url(value) is not None


# The thumbnails the pipeline makes itself (images.data_url: Pillow re-encodes the file as
# a JPEG). An image element cannot run script, whatever its source says it is, but only
# this exact shape is printed, so nothing else that starts with "data:" ever is.
_INLINE_IMAGE = re.compile(r"data:image/jpeg;base64,[A-Za-z0-9+/]+={0,2}")


def safe_image_src(value):
    """An <img src>: what safe_url keeps, or an inline JPEG thumbnail; otherwise None."""
    if isinstance(value, str) and _INLINE_IMAGE.fullmatch(value):
        return value
    return safe_url(value)
