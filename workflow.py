"""The editorial workflow: the article state machine, revisions, events, card links.

Used by the desk (desk.py) and by the pipeline. Every status change goes
through `transition`, every edit through `revise`; both record who did what in
article_events, and both run in one transaction (their own, or the caller's
when one is already open on the connection).

    draft, pending      -> approved | rejected | revision_requested
    revision_requested  -> pending        (the pipeline revised it, or the editor did)
    approved            -> unpublished
    unpublished         -> approved       (re-approve: links come back, never twice)

`rejected` is final: the pipeline will write a fresh draft if the story returns.
"""

import contextlib
import difflib
import html
import re
import unicodedata

import store
from text import html_to_text

TRANSITIONS = {
    "draft": ("approved", "rejected", "revision_requested"),
    "pending": ("approved", "rejected", "revision_requested"),
    "revision_requested": ("pending",),
    "approved": ("unpublished",),
    "unpublished": ("approved",),
    "rejected": (),
}
# The verb article_events.action records for a move to each status.
EVENT_VERBS = {
    "approved": "approve",
    "rejected": "reject",
    "revision_requested": "request_revision",
    "pending": "submit",
    "unpublished": "unpublish",
}
STATUS_LABELS = {
    "draft": "Draft",
    "pending": "Pending review",
    "revision_requested": "Revision requested",
    "approved": "Published",
    "rejected": "Rejected",
    "unpublished": "Unpublished",
}
EDITABLE = store.ARTICLE_COLUMNS - {"cluster_id"}


class TransitionRefused(Exception):
    """A move the state machine does not allow; the message names the current state."""

    def __init__(self, current, target):
        self.current = current
        self.target = target
        allowed = TRANSITIONS.get(current, ())
        options = ", ".join(allowed) if allowed else "nothing (it is final)"
        super().__init__(
            f"The article is {current}; it cannot move to {target}. From {current} it can move to: {options}."
        )


class ArticleNotFound(LookupError):
    def __init__(self, article_id):
        self.article_id = article_id
        super().__init__(f"No article with id {article_id}.")


def allowed_targets(status):
    return TRANSITIONS.get(status, ())


@contextlib.contextmanager
def _atomic(conn):
    """Join the caller's transaction if one is open, else run in a new BEGIN IMMEDIATE one."""
    if conn.in_transaction:
        yield conn
    else:
        with store.transaction(conn):
            yield conn


def _load(conn, article_id):
    article = store.get_article(conn, article_id)
    if article is None:
        raise ArticleNotFound(article_id)
    return article


# --- Status changes ----------------------------------------------------------


def transition(conn, article_id, target, actor, feedback=""):
    """Move an article to `target` if the state machine allows it. Returns the article after.

    Raises TransitionRefused (naming the current state), ArticleNotFound, or
    ValueError for an unknown status or a revision request without feedback.
    """
    if target not in store.ARTICLE_STATUSES:
        raise ValueError(f"unknown status {target!r}; statuses are {', '.join(store.ARTICLE_STATUSES)}")
    feedback = (feedback or "").strip()
    with _atomic(conn):
        _move(conn, _load(conn, article_id), target, actor, feedback)
        return store.get_article(conn, article_id)


def _move(conn, article, target, actor, feedback):
    current = article["status"]
    if target not in TRANSITIONS.get(current, ()):
        raise TransitionRefused(current, target)
    if target == "revision_requested" and not feedback:
        raise ValueError("Say what should change: a revision request needs feedback for the writer.")
    stamp = store.now()
    sets = {"status": target, "updated_at": stamp}
    if target == "revision_requested":
        sets["feedback"] = feedback
    if target == "approved" and not article["published_at"]:
        sets["published_at"] = stamp  # a re-approval keeps its first publication date
    store.update_article(conn, article["id"], **sets)
    store.add_event(conn, article["id"], actor, EVENT_VERBS[target], current, target, feedback)
    if target == "approved":
        link_cards(conn, article["id"])
    elif target == "unpublished":
        unlink_cards(conn, article["id"])


# --- Edits and revisions -----------------------------------------------------


def revise(conn, article_id, actor, note="", to_status=None, **fields):
    """Apply edited fields, snapshot a new revision, optionally move status: all or nothing.

    Returns the article after. A published article that is edited is re-linked,
    so its cards follow its text.
    """
    unknown = set(fields) - EDITABLE
    if unknown:
        raise ValueError(f"fields that cannot be edited: {', '.join(sorted(unknown))}")
    if "type" in fields and fields["type"] not in store.ARTICLE_TYPES:
        raise ValueError(f"type must be one of {', '.join(store.ARTICLE_TYPES)}")
    if "title" in fields and not (fields["title"] or "").strip():
        raise ValueError("The title cannot be empty.")
    if to_status is not None and to_status not in store.ARTICLE_STATUSES:
        raise ValueError(f"unknown status {to_status!r}")
    with _atomic(conn):
        article = _load(conn, article_id)
        if to_status is not None and to_status not in TRANSITIONS.get(article["status"], ()):
            raise TransitionRefused(article["status"], to_status)  # before anything is written
        store.update_article(conn, article_id, **_trimmed(fields), updated_at=store.now())
        number = store.add_revision(conn, article_id, actor, note)
        store.add_event(
            conn, article_id, actor, "edit", article["status"], article["status"], _edit_summary(number, note)
        )
        if to_status is not None:
            _move(conn, store.get_article(conn, article_id), to_status, actor, "")
        elif article["status"] == "approved":
            link_cards(conn, article_id)
        return store.get_article(conn, article_id)


def _trimmed(fields):
    """An edit's fields with the title and TL;DR stripped of outer spaces (the store encodes the rest)."""
    return {k: (v or "").strip() if k in ("title", "tldr") else v for k, v in fields.items()}


def _edit_summary(number, note):
    return f"revision {number}" + (f": {note}" if note else "")


def changed_fields(article, fields):
    """The subset of `fields` that would change the article (the desk skips no-op edits)."""
    changed = {}
    for key, value in fields.items():
        current = article.get(key)
        if key == "body_html":
            value = store.sanitize_html(value)
        elif key in ("title", "tldr"):
            value = (value or "").strip()
        if value != current:
            changed[key] = fields[key]
    return changed


def diff_revisions(old, new):
    """Word-level differences between two revisions, only for fields that changed.

    [{"field", "label", "segments": [(op, text)]}] with op one of same/del/ins.
    """
    changes = []
    for field, label in store.REVISION_FIELDS:
        a, b = _diffable(field, old[field]), _diffable(field, new[field])
        if a != b:
            changes.append({"field": field, "label": label, "segments": diff_words(a, b)})
    return changes


def _diffable(field, value):
    if field == "body_html":
        return html_to_text(value)
    if field == "key_details":
        return "\n".join(f"{label}: {text}" for label, text in value)
    if field == "critic_issues":
        return "\n".join(f"- {issue}" for issue in value)
    return "" if value is None else str(value)


# Comparing word by word costs about (words in old) x (words in new): two 20,000-word
# revisions took 27 s. So lines (a block of the article each) are compared first, and
# words only inside a changed block of at most this many word pairs; a larger block is
# shown as one deletion and one insertion (bench/bench_diff.py measures both sides).
WORD_DIFF_LIMIT = 1_000_000


def diff_words(a, b):
    """Merge runs of words into (op, text) segments; whitespace rides with its word.

    Bounded for any two revisions (WORD_DIFF_LIMIT): unchanged lines are matched first,
    then the words of each changed block.
    """
    segments = []
    for op, old, new in _matched(a.splitlines(keepends=True), b.splitlines(keepends=True)):
        if op == "same":
            segments.append(("same", "".join(old)))
        else:
            words = _matched(re.findall(r"\s*\S+|\s+", "".join(old)), re.findall(r"\s*\S+|\s+", "".join(new)))
            for word_op, old_words, new_words in words:
                if word_op == "same":
                    segments.append(("same", "".join(old_words)))
                else:
                    segments += [("del", "".join(old_words)), ("ins", "".join(new_words))]
    return [(op, text) for op, text in segments if text]


def _matched(old, new):
    """(op, old part, new part) runs, op "same" or "changed": the common beginning and end
    first (linear), then difflib on the rest while it is within WORD_DIFF_LIMIT."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    old_rest, new_rest = old[start : len(old) - end], new[start : len(new) - end]
    runs = [("same", old[:start], new[:start])]
    if len(old_rest) * len(new_rest) > WORD_DIFF_LIMIT:
        runs.append(("changed", old_rest, new_rest))
    else:
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old_rest, new_rest, autojunk=False).get_opcodes():
            runs.append(("same" if op == "equal" else "changed", old_rest[i1:i2], new_rest[j1:j2]))
    runs.append(("same", old[len(old) - end :], new[len(new) - end :]))
    return [run for run in runs if run[1] or run[2]]


# --- Card links --------------------------------------------------------------


def _normalise(text):
    text = unicodedata.normalize("NFKC", text)
    return text.replace("\u2019", "'").replace("\u00ae", "").replace("\u2122", "")


def keyword_pattern(keywords):
    """One case-insensitive regex for a card's names; whole words, any run of spaces between them."""
    parts = []
    for keyword in sorted({_normalise(k).strip() for k in keywords if k and k.strip()}, key=len, reverse=True):
        parts.append(r"\s+".join(re.escape(word) for word in keyword.split()))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


class CardLinker:
    """Links card names in card text to those cards' pages, as articles link to cards.

    One pattern over every card's keywords and name, longest first, so "Venture X" wins
    over "Venture" and "Business Platinum Card" over "Platinum Card".
    """

    def __init__(self, cards):
        self.slugs = {}
        for card in cards:
            for name in [card["name"], *card["keywords"]]:
                self.slugs.setdefault(self._key(name), card["slug"])
        self.pattern = keyword_pattern(list(self.slugs))

    @staticmethod
    def _key(name):
        return " ".join(_normalise(name).split()).casefold()

    def spans(self, text):
        """(the text as matched, [(start, end, slug)] of each card name in it)."""
        text = _normalise(text)
        found = []
        for match in self.pattern.finditer(text) if self.pattern else ():
            found.append((match.start(), match.end(), self.slugs[self._key(match.group(0))]))
        return text, found

    def html(self, text, own_slug=None):
        """The text, escaped, with each other card's name a link to its page."""
        text, spans = self.spans(text)
        out, last = [], 0
        for start, end, slug in spans:
            name = html.escape(text[start:end])
            out.append(html.escape(text[last:start]))
            out.append(name if slug == own_slug else f'<a href="/cards/{slug}">{name}</a>')
            last = end
        out.append(html.escape(text[last:]))
        return "".join(out)


def find_cards(conn, article):
    """Cards whose keywords (or name) appear in the article's title, TL;DR or body text."""
    text = _normalise("\n".join([article["title"], article["tldr"], html_to_text(article["body_html"])]))
    found = []
    for card in store.list_cards(conn):
        pattern = keyword_pattern([*card["keywords"], card["name"]])
        if pattern is not None and pattern.search(text):
            found.append(card)
    return found


def link_cards(conn, article_id):
    """Link the article to every card it mentions and list it in their Recent Changes.

    Idempotent: running it again adds nothing twice, and drops cards the text no
    longer mentions. Returns the linked cards' slugs.
    """
    with _atomic(conn):
        article = _load(conn, article_id)
        cards = find_cards(conn, article)
        store.set_card_links(conn, article_id, [card["id"] for card in cards])
    return [card["slug"] for card in cards]


def unlink_cards(conn, article_id):
    with _atomic(conn):
        store.set_card_links(conn, article_id, [])


# --- Queues ------------------------------------------------------------------
