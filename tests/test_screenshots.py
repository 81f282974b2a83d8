"""Screenshots of every reader page (and the desk) in Debian's Chromium, at three sizes.

The real app runs on waitress on a loopback port over a seeded database; articles are
written through the store and published through the workflow, with JPEGs made here by
Pillow and served by a second loopback server (nothing leaves the machine). Each capture
is checked for things a reader would notice: sideways scrolling, console errors or
failed requests, missing landmarks or heading, images without alt text or that did not
load, and the article's sidebar in the wrong place. PNGs go to artifacts/screenshots/.
"""

import functools
import http.server
import os
import re
import threading
import time

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, wait_until_up

import app as milesahead
import config as configuration
import store
import workflow

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1440, 900), "tablet": (820, 1180), "mobile": (390, 844)}
SHOTS = os.path.join(ROOT, "artifacts", "screenshots")
ADMIN_PASSWORD = "correct horse battery staple"


# --- Images: JPEGs made here, served from loopback ---------------------------


def make_jpeg(path, size, hue):
    """A photo-like JPEG: a soft two-colour gradient with a card shape on it."""
    from PIL import Image, ImageDraw, ImageFilter

    width, height = size
    top, bottom = hue
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    card_w, card_h = int(width * 0.42), int(width * 0.42 * 0.63)
    x, y = int(width * 0.3), int(height * 0.5 - card_h / 2)
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).rounded_rectangle([x + 12, y + 18, x + card_w + 12, y + card_h + 18], 28, fill=120)
    image.paste((20, 24, 28), mask=shadow.filter(ImageFilter.GaussianBlur(18)))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([x, y, x + card_w, y + card_h], radius=28, fill=(28, 40, 52))
    draw.rounded_rectangle([x + 40, y + 60, x + 40 + card_w // 6, y + 60 + card_h // 6], radius=8, fill=(212, 175, 55))
    for i in range(4):
        draw.rounded_rectangle(
            [x + 40 + i * card_w // 5, y + card_h - 70, x + 30 + (i + 1) * card_w // 5 - 20, y + card_h - 50],
            radius=6,
            fill=(190, 198, 206),
        )
    image.save(path, "JPEG", quality=82)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    """Base URL of a loopback server holding hero images and thumbnails."""
    root = tmp_path_factory.mktemp("images")
    palettes = {
        "lounge": ((24, 74, 92), (196, 160, 118)),
        "runway": ((36, 52, 96), (232, 140, 92)),
        "hotel": ((62, 48, 88), (214, 190, 160)),
    }
    for name, hue in palettes.items():
        make_jpeg(root / f"{name}.jpg", (1600, 900), hue)
        make_jpeg(root / f"{name}-thumb.jpg", (640, 400), hue)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- The site, seeded --------------------------------------------------------


def image_fields(base, name, alt, author):
    return dict(
        image_url=f"{base}/{name}.jpg",
        image_thumb_url=f"{base}/{name}-thumb.jpg",
        image_alt=alt,
        image_attribution={
            "author": author,
            "source": "Wikimedia Commons",
            "license": "CC BY-SA 4.0",
            "link": f"https://commons.wikimedia.org/wiki/File:{name.capitalize()}.jpg",
        },
    )


ARTICLES = [
    dict(
        type="summary",
        title="Marriott Bonvoy moves more hotels to dynamic award pricing",
        tldr="Peak nights at top properties now cost up to 20% more points; off-peak nights got a little cheaper.",
        body_html=(
            "<p>Marriott Bonvoy has widened dynamic pricing to most of its luxury brands. Standard rooms at"
            " properties such as the St. Regis and the Ritz-Carlton now move with cash rates.</p>"
            "<p>For holders of the Marriott Bonvoy Brilliant card, the annual free night certificate (worth up to"
            " 85,000 points) stretches less far on peak dates.</p>"
        ),
        key_details=[["Program", "Marriott Bonvoy"], ["Effective", "Now"], ["Change", "Peak prices up to +20%"]],
        links=[{"title": "Marriott Bonvoy award chart", "url": "https://example.com/bonvoy"}],
        sources=[{"title": "Bonvoy pricing update", "url": "https://example.com/news/1", "site": "example.com"}],
        persona_take="Book certificate nights off-peak and top up with points; peak weekends are now a poor use.",
        image="hotel",
        alt="A hotel lobby at dusk with warm lighting",
    ),
    dict(
        type="roundup",
        title="This week in points: transfer bonuses, lounge openings and a fee change",
        tldr="Three transfer bonuses, two new lounges and one annual fee increase worth knowing about.",
        body_html="<p>A quieter week, but three transfer bonuses are live until the end of the month.</p>",
        key_details=[["Transfer bonuses", "3 live"], ["New lounges", "2"]],
        links=[],
        sources=[
            {"title": "Lounge openings", "url": "https://example.com/news/2", "site": "example.com"},
            {"title": "Transfer bonus tracker", "url": "https://example.org/bonuses", "site": "example.org"},
        ],
        persona_take="Only move points for a booking you have already found.",
        image=None,
        alt="",
    ),
    dict(
        type="deal",
        title="Capital One Venture X: 100,000-mile welcome offer is back for a limited time",
        tldr="Earn 100,000 miles after spending $10,000 in six months, up from the usual 75,000.",
        body_html=(
            "<p>Capital One has brought back the elevated welcome offer on the Venture X: 100,000 miles after"
            " $10,000 in purchases in the first six months.</p>"
            "<p>The annual fee stays at $395, offset by the $300 travel credit and 10,000 anniversary miles.</p>"
        ),
        key_details=[["Bonus", "100,000 miles"], ["Spend", "$10,000 in 6 months"], ["Annual fee", "$395"]],
        links=[{"title": "Venture X offer page", "url": "https://example.com/venture-x"}],
        sources=[{"title": "Venture X offer returns", "url": "https://example.com/news/3", "site": "example.com"}],
        persona_take="Worth it only if $10,000 of spending fits your normal budget; never spend for the bonus.",
        image="runway",
        alt="A runway at sunrise seen from the terminal",
    ),
    dict(
        type="deal",
        title="Chase Sapphire Reserve welcome bonus climbs to 125,000 points",
        tldr="The highest public offer on the Sapphire Reserve yet: 125,000 Ultimate Rewards points after $6,000 spend in three months.",
        body_html=(
            "<p>Chase has raised the public welcome offer on the Chase Sapphire Reserve to 125,000 Ultimate Rewards"
            " points after you spend $6,000 in the first three months. The previous standard offer was 60,000"
            " points.</p>"
            "<h2>Who can get it</h2>"
            "<p>The usual rules apply: you are not eligible if you have received a new-cardmember bonus on any"
            " Sapphire card in the past 48 months, and Chase's 5/24 rule still counts every new account you opened"
            " in the last two years.</p>"
            "<ul><li>Annual fee: $795</li><li>$300 annual travel credit</li><li>Priority Pass Select and Chase"
            " Sapphire Lounge access</li></ul>"
            "<h2>What the points are worth</h2>"
            "<p>Transferred to partners such as World of Hyatt or United MileagePlus, 125,000 points can cover a"
            " week of hotel nights or a one-way business-class seat to Europe. Redeemed through Chase Travel the"
            " value depends on the booking.</p>"
            "<table><thead><tr><th>Use</th><th>Typical value</th><th>125,000 points</th></tr></thead><tbody>"
            "<tr><td>World of Hyatt transfer</td><td>1.7–2.0 cents</td><td>$2,125–$2,500</td></tr>"
            "<tr><td>Chase Travel</td><td>1.0–2.0 cents</td><td>$1,250–$2,500</td></tr>"
            "<tr><td>Statement credit</td><td>1.0 cent</td><td>$1,250</td></tr></tbody></table>"
            "<p>The offer has no published end date; past elevated offers have lasted four to eight weeks.</p>"
        ),
        key_details=[
            ["Bonus", "125,000 points"],
            ["Minimum spend", "$6,000 in 3 months"],
            ["Annual fee", "$795"],
            ["Eligibility", "No Sapphire bonus in 48 months; under 5/24"],
            ["Ends", "Not announced"],
        ],
        links=[
            {"title": "Chase Sapphire Reserve offer page", "url": "https://example.com/csr"},
            {"title": "How Chase's 5/24 rule works", "url": "https://example.com/5-24"},
        ],
        sources=[
            {"title": "Sapphire Reserve bonus raised", "url": "https://example.com/news/4", "site": "example.com"},
            {"title": "Chase ups CSR offer", "url": "https://example.org/csr-offer", "site": "example.org"},
        ],
        persona_take=(
            "The best Sapphire Reserve offer we have seen. If you are under 5/24, can meet the spend with normal"
            " purchases and will use the travel credit, apply now; if the $795 fee makes you wince, the Preferred"
            " is the better card."
        ),
        image="lounge",
        alt="An airport lounge with armchairs facing a window onto the apron",
    ),
]

DRAFT = dict(
    type="deal",
    title="Amex Platinum: 175,000-point offer through the referral tool",
    tldr="Some referral links show 175,000 Membership Rewards points after $8,000 spend in six months.",
    body_html="<p>Targeted referral links for The Platinum Card from American Express show a 175,000-point offer.</p>",
    key_details=[["Bonus", "175,000 points"], ["Spend", "$8,000 in 6 months"]],
    links=[{"title": "Amex Platinum", "url": "https://example.com/amex-platinum"}],
    sources=[
        {"title": "Referral offers spotted", "url": "https://example.com/news/5", "site": "example.com"},
        {"title": "Platinum 175k", "url": "https://example.org/plat", "site": "example.org"},
    ],
    persona_take="Targeted offers vary; check your own link before applying.",
    critic_score=7,
    critic_issues=["The offer is targeted; say so in the title.", "Name the end date if known."],
)


def seed_articles(conn, image_base):
    """Publish ARTICLES oldest first (so the last is the newest); leave DRAFT for review."""
    slugs = {}
    for spec in ARTICLES:
        fields = {k: v for k, v in spec.items() if k not in ("image", "alt")}
        if spec["image"]:
            fields.update(image_fields(image_base, spec["image"], spec["alt"], "A. Photographer"))
        article_id = store.insert_article(conn, status="draft", **fields)
        article = workflow.transition(conn, article_id, "approved", actor="editor")
        slugs[spec["type"]] = article["slug"]
    draft_fields = dict(DRAFT, **image_fields(image_base, "lounge", "An airport lounge at night", "B. Photographer"))
    draft_id = store.insert_article(conn, status="draft", **draft_fields)
    return slugs["deal"], draft_id


@pytest.fixture(scope="module")
def site(tmp_path_factory, image_server):
    """The real app on waitress over a seeded database: yields (base URL, paths by page name)."""
    import bcrypt
    import waitress.server

    tmp = tmp_path_factory.mktemp("site")
    (tmp / "config.yaml").write_text("")
    cfg = configuration.load_config(str(tmp / "config.yaml"))
    cfg["database"]["path"] = str(tmp / "milesahead.db")
    cfg["llm"]["cache_dir"] = str(tmp / "llm-cache")
    cfg["admin"]["password_hash"] = bcrypt.hashpw(ADMIN_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    app = milesahead.create_app(cfg)

    conn = store.connect(cfg["database"]["path"])
    try:
        store.seed_cards(conn, store.load_seed_cards())
        article_slug, draft_id = seed_articles(conn, image_server)
    finally:
        conn.close()

    port = free_port()
    cfg["site"]["base_url"] = f"http://127.0.0.1:{port}"
    server = waitress.server.create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz")
    paths = {
        "home": "/",
        "article": f"/articles/{article_slug}",
        "deals": "/deals",
        "cards": "/cards",
        "card": "/cards/chase-sapphire-reserve",
        "admin-login": "/admin/login",
        "admin-review": f"/admin/articles/{draft_id}",
    }
    yield base, paths
    server.close()
    thread.join(timeout=5)


# --- The browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: the screenshot tests drive Debian's Chromium. "
            "Install it with `sh scripts/system-deps.sh` (make test does this) or `apt-get install chromium`."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A page at one size that records what went wrong while it loaded (reset on each open)."""

    def __init__(self, browser, base, size):
        width, height = SIZES[size]
        self.base = base
        self.size = size
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.problems = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))
        self.page.on("response", self._response)

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"console error: {message.text} at {message.location.get('url')}")

    def _response(self, reply):
        if reply.status >= 400:
            self.problems.append(f"HTTP {reply.status}: {reply.url}")

    def open(self, path):
        self.problems = []
        reply = self.page.goto(self.base + path, wait_until="load")
        assert reply is not None and reply.status == 200, f"{path}: HTTP {reply and reply.status}"
        self.settle()
        return self.page

    def settle(self):
        """Bring lazy images into view and wait until every image has loaded (or failed)."""
        self.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        # Polled from here, not with wait_for_function: its in-page polling evals the
        # predicate, which the site's CSP (script-src 'none') refuses while images still load.
        deadline = time.monotonic() + 30
        while not self.page.evaluate("Array.from(document.images).every(img => img.complete)"):
            assert time.monotonic() < deadline, f"images still loading after 30 s: {self.page.url}"
            self.page.wait_for_timeout(100)
        self.page.evaluate("window.scrollTo(0, 0)")

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def visits(browser, site):
    """One browser context per size, shared by the reader pages (a context costs ~0.4 s)."""
    opened = {}

    def at_size(size):
        if size not in opened:
            opened[size] = Visit(browser, site[0], size)
        return opened[size]

    yield at_size
    for v in opened.values():
        v.close()


@pytest.fixture
def fresh_visit(browser, site):
    """A context of its own (its own cookies), for the desk."""
    opened = []

    def open_visit(size):
        opened.append(Visit(browser, site[0], size))
        return opened[-1]

    yield open_visit
    for v in opened:
        v.close()


def check_page(v, name):
    """What every page must get right, then the full-page PNG."""
    page = v.page
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
             .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
             .slice(0, 5).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))"""
    )
    assert overflow <= 0, f"{name}-{v.size}: page scrolls sideways by {overflow}px; too wide: {wide}"

    h1 = page.locator("h1")
    assert h1.count() == 1, f"{name}-{v.size}: {h1.count()} h1 elements"
    assert h1.is_visible() and h1.inner_text().strip(), f"{name}-{v.size}: h1 hidden or empty"
    for role, label in [("banner", None), ("navigation", "Main"), ("main", None), ("contentinfo", None)]:
        landmark = page.get_by_role(role, name=label) if label else page.get_by_role(role)
        assert landmark.count() == 1, f"{name}-{v.size}: {landmark.count()} {role} landmarks"
        assert landmark.is_visible(), f"{name}-{v.size}: {role} landmark not visible"

    images = page.evaluate(
        "Array.from(document.images).map(img => ({src: img.src, alt: img.getAttribute('alt'),"
        " loaded: img.complete && img.naturalWidth > 0}))"
    )
    for image in images:
        assert (image["alt"] or "").strip(), f"{name}-{v.size}: image without alt text: {image['src']}"
        assert image["loaded"], f"{name}-{v.size}: image did not load: {image['src']}"
        assert image["src"].startswith("http://127.0.0.1:"), f"{name}-{v.size}: off-machine image {image['src']}"

    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}-{v.size}.png"), full_page=True)
    assert v.problems == [], f"{name}-{v.size}: " + "; ".join(v.problems)
    return images


def box(page, selector):
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} not rendered"
    return b


# --- Reader pages ------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_home_lists_articles_with_deals_marked(visits, site, size):
    v = visits(size)
    page = v.open(site[1]["home"])
    images = check_page(v, "home")
    assert page.locator("article.item").count() == len(ARTICLES)
    assert page.locator("article.item-deal").count() == 2
    assert len(images) == 3, "every article with an image shows its thumbnail"


@pytest.mark.parametrize("size", SIZES)
def test_article_body_and_sidebar(visits, site, size):
    v = visits(size)
    page = v.open(site[1]["article"])
    images = check_page(v, "article")
    assert [i["alt"] for i in images] == ["An airport lounge with armchairs facing a window onto the apron"]
    assert page.get_by_role("heading", name="Scout's Take").is_visible()
    assert page.get_by_role("link", name="Chase Sapphire Reserve", exact=True).is_visible()
    assert "A. Photographer" in page.locator("figcaption").inner_text()

    body, side = box(page, ".article-body"), box(page, "aside.article-side")
    if size == "desktop":
        assert side["x"] >= body["x"] + body["width"], f"sidebar not beside the body: {body} {side}"
        assert abs(side["y"] - body["y"]) < 2, "sidebar and body tops should align"
    else:
        assert side["y"] >= body["y"] + body["height"], f"sidebar not below the body: {body} {side}"


@pytest.mark.parametrize("size", SIZES)
def test_deals_lists_only_deals(visits, site, size):
    v = visits(size)
    page = v.open(site[1]["deals"])
    check_page(v, "deals")
    assert page.locator("article.item").count() == page.locator("article.item-deal").count() == 2


@pytest.mark.parametrize("size", SIZES)
def test_cards_index_groups_every_card(visits, site, size):
    v = visits(size)
    page = v.open(site[1]["cards"])
    check_page(v, "cards")
    assert page.locator(".card-tile").count() == len(store.load_seed_cards())
    assert page.locator("section.category").count() == 6


@pytest.mark.parametrize("size", SIZES)
def test_card_page_has_verdict_and_sections(visits, site, size):
    v = visits(size)
    page = v.open(site[1]["card"])
    check_page(v, "card")
    assert page.get_by_role("heading", name="Scout's Verdict").is_visible()
    assert page.locator(".card-section").count() == len(store.SECTIONS) + 2  # + Recent Changes, Sources
    assert page.locator("#sources li a").first.is_visible()
    recent = page.locator("#recent-changes")
    assert recent.get_by_role("link", name=re.compile("Sapphire Reserve welcome bonus")).is_visible()
    verdict, first = box(page, ".verdict"), box(page, ".card-section")
    assert verdict["y"] + verdict["height"] <= first["y"], "the verdict comes before the sections"


# --- The desk ----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_admin_login(fresh_visit, site, size):
    v = fresh_visit(size)
    page = v.open(site[1]["admin-login"])
    check_page(v, "admin-login")
    assert page.get_by_label("Password").is_visible()
    assert page.get_by_role("button", name="Log in").is_visible()


@pytest.mark.parametrize("size", SIZES)
def test_admin_review(fresh_visit, site, size):
    v = fresh_visit(size)
    page = v.open(site[1]["admin-login"] + "?next=" + site[1]["admin-review"])
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert page.url == site[0] + site[1]["admin-review"], "login did not return to the review page"
    page.frame_locator("iframe.preview").locator("h1").wait_for()
    v.settle()
    check_page(v, "admin-review")
    assert page.locator("h1").inner_text() == DRAFT["title"]
    for button in ("Approve and publish", "Request revision", "Reject"):
        assert page.get_by_role("button", name=button).is_visible(), button
    preview = page.frame_locator("iframe.preview")
    assert preview.locator("h1").inner_text() == DRAFT["title"]
    assert preview.locator("aside.article-side").is_visible()
