"""Finding links a browser would run: every attribute that can hold a URL, read as a browser reads it.

Each function returns the offending (where, value) pairs, so a test asserts `== []` and a
failure names them. A URL attribute may be relative (it stays on this site) or absolute
http(s); anything with another scheme fails. The one exception is an <img src> holding a
base64 JPEG: the thumbnails the pipeline makes itself, and an image cannot run script.
Outside URL attributes, no value may even start like a script link.
"""

import json
import re
import xml.etree.ElementTree as ET

from bs4 import BeautifulSoup

# Attributes whose value a browser fetches, navigates to or submits to (HTML and SVG).
URL_ATTRIBUTES = {
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "cite",
    "background",
    "ping",
    "manifest",
    "codebase",
    "longdesc",
    "xlink:href",
}
# JSON keys that hold a URL in the APIs' answers.
URL_KEYS = {"url", "link", "image_url", "official_url", "page", "thumbnail", "author_url", "license_url"}
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
SCRIPTY = ("javascript:", "vbscript:", "data:", "file:")
INLINE_JPEG = re.compile(r"data:image/jpeg;base64,[a-z0-9+/]+=*")


def as_a_browser_reads(value):
    """Leading/trailing whitespace and controls stripped, tabs and newlines removed, case folded."""
    return re.sub(r"[\t\n\r]", "", value.strip("".join(map(chr, range(0x21))) + "\x7f")).lower()


def scheme_of(value):
    match = SCHEME.match(as_a_browser_reads(value))
    return match.group(1) if match else None


def unsafe_urls_in_html(text):
    found = []
    for element in BeautifulSoup(text, "html.parser").find_all(True):
        for name, value in element.attrs.items():
            values = value if isinstance(value, list) else [value]
            for one in values:
                where = f"<{element.name} {name}>"
                read = as_a_browser_reads(one)
                if element.name == "img" and name == "src" and INLINE_JPEG.fullmatch(read):
                    continue
                if name in URL_ATTRIBUTES or (name == "content" and element.get("property") == "og:image"):
                    if scheme_of(one) not in (None, "http", "https"):
                        found.append((where, one))
                elif read.startswith(SCRIPTY):
                    found.append((where, one))
    return found


def unsafe_urls_in_json(data, where="$"):
    """Every string in a JSON document: none may be a non-http(s) URL (inline JPEG thumbnails aside)."""
    if isinstance(data, (bytes, str)) and where == "$":
        data = json.loads(data)
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found += unsafe_urls_in_json(value, f"{where}.{key}")
    elif isinstance(data, list):
        for n, value in enumerate(data):
            found += unsafe_urls_in_json(value, f"{where}[{n}]")
    elif isinstance(data, str):
        read = as_a_browser_reads(data)
        if read.startswith(SCRIPTY) and not INLINE_JPEG.fullmatch(read):
            found.append((where, data))
        elif where.rsplit(".", 1)[-1] in URL_KEYS:
            if data and scheme_of(data) not in ("http", "https"):
                found.append((where, data))
    return found


def unsafe_urls_in_xml(text):
    """An Atom feed or a sitemap: every href and every text must be http(s) or plain text."""
    found = []
    for element in ET.fromstring(text).iter():
        for name, value in element.attrib.items():
            if name == "href" and scheme_of(value) not in ("http", "https"):
                found.append((element.tag, value))
        if element.text and as_a_browser_reads(element.text).startswith(SCRIPTY):
            found.append((element.tag, element.text))
    return found
