"""Templates and styles: the desk's own layout and stylesheet, the site's title from config,
colours only as custom properties, and times the way people read them."""

import json
import re
from pathlib import Path

import pytest
from helpers import ROOT, approved_article, login, make_article, seed_sample_cards

import display

VIEWS = Path(ROOT) / "views"
STATIC = Path(ROOT) / "static"


def stylesheets(page):
    return [link["href"].split("?")[0] for link in page.html.select('link[rel="stylesheet"]')]


# --- The desk has a layout of its own ----------------------------------------------------


@pytest.mark.desk_open
@pytest.mark.parametrize("path", ["/admin/login", "/admin", "/admin/runs", "/admin/cards"])
def test_desk_pages_have_the_desks_layout_not_the_readers(client, conn, path):
    if path != "/admin/login":
        login(client)
    page = client.get(path).html
    assert page.select(".site-header, .site-footer") == []  # the reader's header and footer
    assert page.select_one("header.desk-header .admin-title").text.startswith("milesahead")
    assert len(page.select('nav[aria-label="Main"]')) == 1 and page.select_one("footer.desk-footer")
    assert not page.select('a[href="/deals"], a[href="/news"]')  # the reader's navigation
    assert page.select_one('meta[name="robots"]')["content"] == "noindex, nofollow"


@pytest.mark.desk_open
def test_the_desk_links_its_own_stylesheet_and_the_review_page_too(editor, conn):
    article_id = make_article(conn)
    for path in ["/admin", f"/admin/articles/{article_id}"]:
        assert stylesheets(editor.get(path)) == ["/static/style.css", "/static/admin.css"]


def test_reader_pages_never_link_the_desk_stylesheet(client, seeded):
    article = approved_article(seeded)
    paths = ["/", "/deals", "/news", "/cards", f"/articles/{article['slug']}", "/cards/chase-sapphire-reserve"]
    for path in paths:
        assert stylesheets(client.get(path)) == ["/static/style.css"], path
    assert stylesheets(client.get("/no-such-page", status=404)) == ["/static/style.css"]


def used(templates, pattern):
    """Class names (or tag names) the templates write literally."""
    found = set()
    for path in templates:
        text = path.read_text(encoding="utf-8")
        if pattern == "class":
            for value in re.findall(r'class="([^"]*)"', text):
                found |= {word for word in value.split() if re.fullmatch(r"[a-z][\w-]*", word)}
        else:
            found |= set(re.findall(r"<([a-z][a-z0-9]*)\b", text))
    return found


def selectors(css):
    """Every class and element name a stylesheet's selectors mention."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    names = set()
    for selector in re.findall(r"([^{}]+)\{", css):
        if selector.strip().startswith(("@", ":root")):
            continue
        names |= {f".{c}" for c in re.findall(r"\.([a-zA-Z][\w-]*)", selector)}
        names |= set(re.findall(r"(?:^|[\s,>+~(])([a-z][a-z0-9]*)(?=[\s.:\[,>+~)]|$)", selector.strip()))
    return names


def test_the_readers_stylesheet_holds_no_rule_only_the_desk_uses():
    reader = [p for p in VIEWS.glob("*.tpl")]
    desk = list((VIEWS / "admin").glob("*.tpl"))
    desk_only = {f".{c}" for c in used(desk, "class") - used(reader, "class")}
    desk_only |= {"form", "input", "textarea", "select", "label", "button"} & used(desk, "tag")  # readers get no forms
    assert desk_only, "the desk's templates name no class of their own"
    assert sorted(selectors((STATIC / "style.css").read_text()) & desk_only) == []
    assert desk_only & selectors((STATIC / "admin.css").read_text())


# --- Colours are custom properties ---------------------------------------------------

COLOUR = re.compile(
    r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch)\(|\b(?:white|black|red|green|blue|gray|grey)\b"
)


@pytest.mark.parametrize("name", ["style.css", "admin.css"])
def test_colours_are_written_only_as_custom_properties(name):
    css = re.sub(r"/\*.*?\*/", "", (STATIC / name).read_text(), flags=re.S)
    literal = []
    for prop, value in re.findall(r"([\w-]+)\s*:\s*([^;{}]+)", css):
        if not prop.startswith("--") and prop != "white-space" and COLOUR.search(value):
            literal.append(f"{prop}: {value.strip()}")
    assert literal == []


# --- The site's title ----------------------------------------------------------------


def test_the_header_shows_the_configured_title(config, client, seeded):
    config["site"]["title"] = "Points Daily"
    page = client.get("/").html
    assert page.select_one("header .brand").text == "Points Daily"
    assert "milesahead" not in page.select_one("header").text
    assert page.select_one("title").text == "Points Daily"


@pytest.mark.desk_open
def test_the_desk_shows_the_configured_title(config, client):
    config["site"]["title"] = "Points Daily"
    page = client.get("/admin/login").html
    assert page.select_one(".admin-title").text == "Points Daily editorial desk"
    assert page.select_one("title").text == "Editor login · Points Daily desk"


# --- Times for people, with the machine's beside them ---------------------------------


def visible_text(page):
    return page.html.get_text(" ")


@pytest.mark.desk_open
def test_runs_show_their_times_for_people(editor, conn):
    conn.execute(
        "INSERT INTO pipeline_runs (trigger, status, started_at, finished_at, counts, errors)"
        " VALUES ('schedule', 'ok', '2026-11-27T10:00:00+00:00', '2026-11-27T10:03:00+00:00', ?, '[]')",
        (json.dumps({"articles": 3}),),
    )
    conn.commit()
    page = editor.get("/admin/runs")
    started = page.html.select_one('time[datetime="2026-11-27T10:00:00+00:00"]')
    assert started.text == "27 Nov 2026, 10:00 UTC"
    assert page.html.select_one('time[datetime="2026-11-27T10:03:00+00:00"]').text == "27 Nov 2026, 10:03 UTC"
    assert "2026-11-27T10" not in visible_text(page)


@pytest.mark.desk_open
def test_the_review_page_shows_history_and_actions_at_times_for_people(editor, conn):
    article_id = make_article(conn)
    page = editor.get(f"/admin/articles/{article_id}")
    times = page.html.select("#revisions time, #events time, .review-header time")
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+\+00:00", t["datetime"]) for t in times)
    assert all(re.fullmatch(r"\d{1,2} \w{3} \d{4}(, \d\d:\d\d UTC)?", t.text) for t in times)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", visible_text(page))


@pytest.mark.desk_open
def test_the_card_facts_page_shows_dates_for_people(editor, conn):
    seed_sample_cards(conn)
    page = editor.get("/admin/cards")
    checked = page.html.select_one('table.cards-report time[datetime="2026-11-01"]')
    assert checked.text == "1 Nov 2026"
    assert "2026-11-01" not in visible_text(page)


def test_times_are_shown_in_utc_whatever_offset_they_were_stored_with():
    assert display.format_time("2026-11-27T11:30:00+01:00") == "27 Nov 2026, 10:30 UTC"
    assert display.time_tag("") == "—"
    assert display.time_tag("not a time") == '<time datetime="not a time">not a time</time>'
    assert display.diff_html([("same", "a <b> "), ("del", "x&y"), ("ins", "z")]) == (
        "a &lt;b&gt; <del>x&amp;y</del><ins>z</ins>"
    )
