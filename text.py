"""Text helpers shared by the feeds, the pipeline's writer, the image search and the desk.

HTML to text comes in two shapes: one line (feed items, model replies, image credits),
and a line per block (the desk's diffs and card matching, where paragraphs matter).
"""

import html
import re
import unicodedata

TAG = re.compile(r"<[^>]*>")
TAGS = re.compile(r"<[^>]+>")
BLOCK_END = re.compile(r"</(p|h[1-6]|li|blockquote|tr|table|ul|ol)\s*>|<br\s*/?>", re.IGNORECASE)
SPACES = re.compile(r"\s+")

# Words too common to tell one story from another (feeds.py's grouping).
STOPWORDS = set(
    """a an and are as at be by for from has have in is it its new of on or that the this to
    was were will with you your our we after about into over than up out now more can get gets""".split()
)
# ...and the ones that make a poor image search besides (images.py's query terms).
QUERY_STOPWORDS = STOPWORDS | set("what who why how just their them they back".split())


def squeeze(value):
    """Any value as one line: runs of whitespace made one space, ends trimmed; None is ""."""
    if value is None:
        return ""
    return SPACES.sub(" ", str(value)).strip()


def html_to_line(value, nfkc=False):
    """HTML to one line of text: tags dropped, entities decoded, whitespace squeezed.

    nfkc: also fold compatibility characters (full-width letters, ligatures), so two feeds'
    copies of one item read alike.
    """
    text = html.unescape(TAGS.sub(" ", str(value or "")))
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    return squeeze(text)


def html_to_text(fragment):
    """Readable text of sanitised article HTML: a line per block, entities decoded."""
    text = BLOCK_END.sub("\n", fragment or "")
    text = html.unescape(TAG.sub(" ", text))
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
