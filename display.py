"""How stored values are shown to people: dates and times, the revision diff, image candidates.

Templates print; the decisions live here, where they can be read and tested. Every
function takes what the store holds and returns text, or markup whose every piece of
data is escaped (templates print those with `{{!...}}`).

Times are stored as ISO 8601 in UTC (store.now()); people read "27 Nov 2026, 10:00 UTC",
and the <time datetime=...> beside it keeps the machine-readable value.
"""

import datetime
import html

import urls


def parse(stamp):
    """An ISO date or time from the store, or None when it is blank or not one."""
    if not stamp:
        return None
    try:
        return datetime.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None


def format_date(stamp):
    """'2026-11-27T10:00:00+00:00' -> '27 Nov 2026'; blank stays blank, anything else as it is."""
    when = parse(stamp)
    return when.strftime("%-d %b %Y") if when else (stamp or "")


def format_time(stamp):
    """'2026-11-27T10:00:00+00:00' -> '27 Nov 2026, 10:00 UTC' (the store writes UTC)."""
    when = parse(stamp)
    if when is None:
        return stamp or ""
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC)
    return when.strftime("%-d %b %Y, %H:%M UTC")


def time_tag(stamp, with_time=True):
    """<time datetime="ISO">for people</time>; '—' when there is no time."""
    if not stamp:
        return "—"
    shown = format_time(stamp) if with_time else format_date(stamp)
    return f'<time datetime="{html.escape(stamp)}">{html.escape(shown)}</time>'


def date_tag(stamp):
    """A date as time_tag shows it, without the time of day."""
    return time_tag(stamp, with_time=False)


def diff_html(segments):
    """workflow.diff_words' [(op, text)] as markup: deletions in <del>, insertions in <ins>."""
    parts = []
    for op, text in segments:
        text = html.escape(text)
        parts.append(f"<del>{text}</del>" if op == "del" else f"<ins>{text}</ins>" if op == "ins" else text)
    return "".join(parts)


def image_candidate(candidate, article):
    """One weighed image as the review page lists it.

    The pipeline stores each candidate as images.choose() writes it: source, url,
    thumbnail, page, title, author, text_score, vision_score, outcome, note, license,
    chosen. The thumbnail is shown where the URL policy allows it, else the image itself.
    """
    thumb = urls.safe_image_src(candidate.get("thumbnail")) or urls.safe_image_src(candidate.get("url")) or ""
    scores = [(k, v) for k, v in candidate.items() if "score" in k and v is not None]
    return {
        "thumb": thumb,
        "title": candidate.get("title") or "",
        "source": candidate.get("source") or "",
        "scores": ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in scores) or "not scored",
        "chosen": bool(candidate.get("chosen"))
        or bool(thumb and thumb in (article["image_url"], article["image_thumb_url"])),
    }


def call_failure(failure):
    """A run's failed outside call, {"source" | "model" | "feed": name, "story", "reason"}, as a row."""
    kind = next((k for k in ("source", "model", "feed") if k in failure), "call")
    return {
        "what": f"{kind} {failure.get(kind, '')}",
        "story": failure.get("story") or "—",
        "reason": failure.get("reason", ""),
    }


def counts_text(counts):
    """A run's counts as 'feeds_ok: 3, drafts_written: 2', or '—' when there are none."""
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "—"
