"""Image credits that satisfy the licences: Title, Author, Source and License, linked, for every source."""

from helpers import approved_article

import images


def first_by_source(config):
    candidates, _ = images.search_all(config, ["credit card"])
    found = {}
    for c in candidates:
        found.setdefault(c["source"], c["attribution"])
    return found


def test_every_source_gives_title_author_source_and_a_linked_licence(config, servers):
    credits = first_by_source(config)
    assert set(credits) == set(images.SOURCES)
    for source, credit in credits.items():
        assert credit["author"] and credit["source"] and credit["license"], source
        assert credit["license_url"].startswith("https://"), source
        assert credit["link"].startswith("https://"), source
    assert credits["openverse"] == {
        "title": "Metal credit card close-up",
        "author": "Dee Flickr",
        "author_url": "https://www.flickr.example/people/dee",
        "source": "Openverse / Flickr",
        "license": "CC BY 2.0",
        "license_url": "https://creativecommons.org/licenses/by/2.0/",
        "link": "https://www.flickr.example/photos/o1",
    }
    assert credits["wikimedia"]["title"] == "Credit card reader"  # ObjectName, not the file name
    assert credits["wikimedia"]["license_url"] == "https://creativecommons.org/licenses/by-sa/4.0"
    assert credits["unsplash"]["title"] == "Credit card on a wooden desk"
    assert credits["unsplash"]["license_url"] == "https://unsplash.com/license"
    assert credits["unsplash"]["author_url"].endswith("?utm_source=milesahead&utm_medium=referral")
    assert credits["pexels"]["author_url"] == "https://pexels.example/@ben"


def test_a_licence_link_the_url_policy_refuses_is_dropped(config, servers):
    servers["openverse"].photos = [dict(servers["openverse"].photos[1])]
    original = servers["openverse"].respond

    def hostile(handler, request):
        reply = handler.reply

        def rewrite(status=200, body=b"", *args, **kwargs):
            if isinstance(body, dict):
                for r in body.get("results", []):
                    r["license_url"] = "javascript:alert(1)"
            return reply(status, body, *args, **kwargs)

        handler.reply = rewrite
        return original(handler, request)

    servers["openverse"].respond = hostile
    refused = []
    candidates, _ = images.search_all(config, ["credit card"], refused=refused)
    credit = next(c["attribution"] for c in candidates if c["source"] == "openverse")
    assert credit["license_url"] == "" and credit["license"] == "CC BY 2.0"
    assert any("license_url" in r and "javascript" in r for r in refused)


def words(element):
    return " ".join(element.get_text().split())


CREDIT = {
    "title": "Metal credit card close-up",
    "author": "Dee Flickr",
    "author_url": "https://www.flickr.example/people/dee",
    "source": "Openverse / Flickr",
    "license": "CC BY 2.0",
    "license_url": "https://creativecommons.org/licenses/by/2.0/",
    "link": "https://www.flickr.example/photos/o1",
}


def test_the_caption_gives_tasl_with_a_link_to_the_licence(conn, client):
    article = approved_article(conn, image_url="https://img.example/o1.jpg", image_attribution=CREDIT)
    page = client.get(f"/articles/{article['slug']}")
    caption = page.html.select_one("figure.hero figcaption")
    assert words(caption) == "\u201cMetal credit card close-up\u201d by Dee Flickr, Openverse / Flickr, CC BY 2.0"
    links = {a.get_text(): a["href"] for a in caption.select("a")}
    assert links == {
        "\u201cMetal credit card close-up\u201d": "https://www.flickr.example/photos/o1",
        "Dee Flickr": "https://www.flickr.example/people/dee",
        "CC BY 2.0": "https://creativecommons.org/licenses/by/2.0/",
    }
    panel = next(p for p in page.html.select("section.panel") if "Image credit" in p.get_text())
    assert panel.select_one("a[href='https://creativecommons.org/licenses/by/2.0/']")


def test_a_credit_stored_without_links_or_with_a_bad_one_prints_text_only(conn, client):
    credit = {"author": "Eve", "source": "Wikimedia Commons", "license": "CC BY-SA 4.0", "license_url": "javascript:x"}
    article = approved_article(conn, image_url="https://img.example/w.jpg", image_attribution=credit)
    caption = client.get(f"/articles/{article['slug']}").html.select_one("figure.hero figcaption")
    assert caption.select("a") == []
    assert words(caption) == "Image by Eve, Wikimedia Commons, CC BY-SA 4.0"
