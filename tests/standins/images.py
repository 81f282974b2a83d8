"""The five image APIs, each on its own server, in their documented response shapes.

- Unsplash   GET /search/photos?query&per_page     Authorization: Client-ID KEY
             {"total", "total_pages", "results": [{"id", "description", "alt_description",
              "urls": {"raw", "full", "regular", "small", "thumb"}, "links": {"html",
              "download_location"}, "user": {"name", "username", "links": {"html"}}}]}
- Pexels     GET /v1/search?query&per_page         Authorization: KEY
             {"page", "per_page", "total_results", "photos": [{"id", "url", "photographer",
              "photographer_url", "alt", "src": {"original", "large", "medium", "small", "tiny"}}]}
- Pixabay    GET /api/?key&q&per_page (3-200)
             {"total", "totalHits", "hits": [{"id", "pageURL", "tags", "previewURL",
              "webformatURL", "largeImageURL", "user", "user_id"}]}
- Openverse  GET /v1/images/?q&page_size            (anonymous)
             {"result_count", "page_count", "page_size", "page", "results": [{"id", "title",
              "url", "thumbnail", "foreign_landing_url", "creator", "creator_url", "license",
              "license_version", "provider", "source", "tags": [{"name"}]}]}
- Wikimedia  GET /w/api.php?action=query&generator=search&gsrsearch&gsrnamespace=6
             &prop=imageinfo&iiprop=url|mime|size|extmetadata&iiurlwidth&formatversion=2
             {"batchcomplete": true, "query": {"pages": [{"pageid", "ns": 6, "title": "File:...",
              "index", "imageinfo": [{"url", "descriptionurl", "thumburl", "mime",
              "extmetadata": {"ObjectName": {"value"}, "Artist": {"value"}, "LicenseShortName":
              {"value"}, "LicenseUrl": {"value"}, "ImageDescription": {"value"}}}]}]}}

Every server also serves its photos' files at /img/<id>.jpg. A photo is
{"id", "title", "color"} plus optionally "kind": "html" (a web page, not an
image), "huge" (streams without a Content-Length, far past any cap) or "drip"
(64 bytes a second without a Content-Length, for as long as anyone listens), and
"page" / "file": the URLs the API gives for the photo's page (its attribution
link) and for the image itself, in place of the usual ones (a hostile API's links).

Bad days, on demand: `delay` slows every search; `status` fails every search
with that code (in the source's documented error shape: Pixabay's is plain
text), `retry_after` adds that header to it; `faults` is a queue of statuses
for the next searches only (then answers resume). Openverse refuses an
anonymous page_size over 20 with a 401, as documented. Wikimedia's `api_error`
= (code, info) answers every search with a 200 carrying {"error": {"code",
"info"}} and the MediaWiki-API-Error header, as MediaWiki reports errors.
"""

import io
import time

from PIL import Image

from . import Standin

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "grey": (128, 128, 128)}


def jpeg(color, size=(640, 427)):
    out = io.BytesIO()
    Image.new("RGB", size, COLORS[color]).save(out, "JPEG", quality=85)
    return out.getvalue()


class ImageAPIStandin(Standin):
    name = ""
    key_required = True

    def __init__(self, photos=None, key="test-key", delay=0.0):
        super().__init__()
        self.photos = photos if photos is not None else list(SAMPLE[self.name])
        self.key = key
        self.delay = delay
        self.status = None
        self.retry_after = None
        self.faults = []
        self.searches = []

    def img(self, photo):
        return photo.get("file") or f"{self.url}/img/{photo['id']}.jpg"

    def page(self, photo, usual):
        return photo.get("page", usual)

    def handle(self, handler, request):
        if request["path"].startswith("/img/"):
            return self.serve_file(handler, request["path"][5:].removesuffix(".jpg"))
        if request["path"].startswith("/download/"):
            return handler.reply(200, {"url": "tracked"})
        time.sleep(self.delay)
        with self.lock:
            status = self.faults.pop(0) if self.faults else self.status
        if status:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return self.fail(handler, status, headers)
        self.searches.append(request)
        self.respond(handler, request)

    def fail(self, handler, status, headers):
        handler.reply(status, {"errors": [f"stand-in failure {status}"]}, headers=headers)

    def serve_file(self, handler, photo_id):
        photo = next((p for p in self.photos if str(p["id"]) == photo_id), None)
        if photo is None:
            return handler.reply(404, "no such file", "text/plain")
        kind = photo.get("kind", "jpeg")
        if kind == "html":
            return handler.reply(200, "<!doctype html><title>Photo page</title>", "text/html; charset=utf-8")
        if kind == "drip":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Connection", "close")
            handler.end_headers()
            data = jpeg(photo["color"])
            for start in range(0, 10_000_000, 64):  # about 64 bytes a second, until the client hangs up
                handler.wfile.write(data[start : start + 64] or b"\0" * 64)
                handler.wfile.flush()
                time.sleep(1)
            handler.close_connection = True
            return None
        if kind == "huge":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Connection", "close")
            handler.end_headers()
            chunk = b"\xff" * 65536
            for _ in range(400):  # 26 MB if nobody stops reading
                handler.wfile.write(chunk)
            handler.close_connection = True
            return None
        return handler.reply(200, jpeg(photo["color"]), "image/jpeg")

    def respond(self, handler, request):
        raise NotImplementedError


def limit(request, name, default=10):
    return int(request["query"].get(name, default))


class Unsplash(ImageAPIStandin):
    name = "unsplash"

    def respond(self, handler, request):
        if request["path"] != "/search/photos":
            return handler.reply(404, {"errors": ["Not found"]})
        if request["headers"].get("authorization") != f"Client-ID {self.key}":
            return handler.reply(401, {"errors": ["OAuth error: The access token is invalid"]})
        photos = self.photos[: limit(request, "per_page")]
        results = [
            {
                "id": p["id"],
                "width": 640,
                "height": 427,
                "description": p["title"],
                "alt_description": p["title"].lower(),
                "urls": {k: self.img(p) for k in ("raw", "full", "regular", "small", "thumb")},
                "links": {
                    "self": f"{self.url}/photos/{p['id']}",
                    "html": self.page(p, f"https://unsplash.example/photos/{p['id']}"),
                    "download": self.img(p),
                    "download_location": f"{self.url}/download/{p['id']}",
                },
                "user": {
                    "name": p.get("author", "Ana Photographer"),
                    "username": "ana",
                    "links": {"html": "https://unsplash.example/@ana"},
                },
            }
            for p in photos
        ]
        handler.reply(200, {"total": len(self.photos), "total_pages": 1, "results": results})


class Pexels(ImageAPIStandin):
    name = "pexels"

    def respond(self, handler, request):
        if request["path"] != "/v1/search":
            return handler.reply(404, {"error": "Not found"})
        if request["headers"].get("authorization") != self.key:
            return handler.reply(401, {"error": "Unauthorized"})
        per_page = limit(request, "per_page", 15)
        photos = [
            {
                "id": p["id"],
                "width": 640,
                "height": 427,
                "url": self.page(p, f"https://pexels.example/photo/{p['id']}/"),
                "photographer": p.get("author", "Ben Shooter"),
                "photographer_url": "https://pexels.example/@ben",
                "avg_color": "#777777",
                "alt": p["title"],
                "src": {k: self.img(p) for k in ("original", "large2x", "large", "medium", "small", "tiny")},
            }
            for p in self.photos[:per_page]
        ]
        handler.reply(200, {"page": 1, "per_page": per_page, "photos": photos, "total_results": len(self.photos)})


class Pixabay(ImageAPIStandin):
    name = "pixabay"

    def fail(self, handler, status, headers):
        handler.reply(status, f"[ERROR {status}] stand-in failure", "text/plain", headers=headers)

    def respond(self, handler, request):
        if request["path"] != "/api/":
            return handler.reply(404, "Not found", "text/plain")
        if request["query"].get("key") != self.key:
            return handler.reply(400, "[ERROR 400] Invalid or missing API key", "text/plain")
        per_page = limit(request, "per_page", 20)
        if not 3 <= per_page <= 200:
            return handler.reply(400, '[ERROR 400] "per_page" is out of valid range.', "text/plain")
        hits = [
            {
                "id": p["id"],
                "pageURL": self.page(p, f"https://pixabay.example/photos/{p['id']}/"),
                "type": "photo",
                "tags": p.get("tags", p["title"].lower().replace(" ", ", ")),
                "previewURL": self.img(p),
                "webformatURL": self.img(p),
                "largeImageURL": self.img(p),
                "user_id": 42,
                "user": p.get("author", "cara_pix"),
            }
            for p in self.photos[:per_page]
        ]
        handler.reply(200, {"total": len(self.photos), "totalHits": len(self.photos), "hits": hits})


class Openverse(ImageAPIStandin):
    name = "openverse"
    key_required = False

    def respond(self, handler, request):
        if request["path"] != "/v1/images/":
            return handler.reply(404, {"detail": "Not found."})
        page_size = limit(request, "page_size", 20)
        if page_size > 20 and "authorization" not in request["headers"]:
            return handler.reply(401, {"detail": "Authentication credentials were not provided."})
        results = [
            {
                "id": f"ov-{p['id']}",
                "title": p["title"],
                "indexed_on": "2025-01-01T00:00:00Z",
                "foreign_landing_url": self.page(p, f"https://www.flickr.example/photos/{p['id']}"),
                "url": self.img(p),
                "creator": p.get("author", "Dee Flickr"),
                "creator_url": "https://www.flickr.example/people/dee",
                "license": "by",
                "license_version": "2.0",
                "license_url": "https://creativecommons.org/licenses/by/2.0/",
                "provider": "flickr",
                "source": "flickr",
                "tags": [{"name": w} for w in p["title"].lower().split()],
                "attribution": f'"{p["title"]}" by Dee Flickr is licensed under CC BY 2.0.',
                "thumbnail": self.img(p),
                "mature": False,
            }
            for p in self.photos[:page_size]
        ]
        handler.reply(
            200,
            {"result_count": len(self.photos), "page_count": 1, "page_size": page_size, "page": 1, "results": results},
        )


class Wikimedia(ImageAPIStandin):
    name = "wikimedia"
    key_required = False
    api_error = None

    def respond(self, handler, request):
        q = request["query"]
        if self.api_error:
            code, info = self.api_error
            body = {"error": {"code": code, "info": info, "*": "See https://commons.wikimedia.org/w/api.php."}}
            return handler.reply(200, body, headers={"MediaWiki-API-Error": code})
        if request["path"] != "/w/api.php":
            return handler.reply(404, "Not found", "text/plain")
        if q.get("action") != "query" or q.get("generator") != "search" or q.get("gsrnamespace") != "6":
            return handler.reply(200, {"error": {"code": "badparams", "info": "Unexpected parameters"}})
        if not request["headers"].get("user-agent", "").startswith("milesahead"):
            return handler.reply(403, "Please set a user-agent and respect our robot policy.", "text/plain")
        pages = [
            {
                "pageid": 1000 + n,
                "ns": 6,
                "title": f"File:{p['title']}.jpg",
                "index": n + 1,
                "imageinfo": [
                    {
                        "url": self.img(p),
                        "descriptionurl": self.page(p, f"https://commons.wikimedia.example/wiki/File:{p['id']}.jpg"),
                        "thumburl": self.img(p),
                        "thumbwidth": 1024,
                        "mime": p.get("mime", "image/jpeg"),
                        "extmetadata": {
                            "ObjectName": {"value": p["title"]},
                            "Artist": {"value": '<a href="//commons.example/wiki/User:Eve">Eve Commons</a>'},
                            "LicenseShortName": {"value": "CC BY-SA 4.0"},
                            "LicenseUrl": {"value": "https://creativecommons.org/licenses/by-sa/4.0"},
                            "ImageDescription": {"value": f"<p>{p['title']}</p>"},
                        },
                    }
                ],
            }
            for n, p in enumerate(self.photos[: limit(request, "gsrlimit")])
        ]
        handler.reply(200, {"batchcomplete": True, "query": {"pages": pages}})


CLASSES = {"unsplash": Unsplash, "pexels": Pexels, "pixabay": Pixabay, "openverse": Openverse, "wikimedia": Wikimedia}

# Metadata mentioning "card" scores 9 with the stand-in text model, anything else 3;
# the stand-in vision model scores red 9, green 7, anything else 2.
SAMPLE = {
    "unsplash": [
        {"id": "u1", "title": "Credit card on a wooden desk", "color": "red", "author": "Ana Photographer"},
        {"id": "u2", "title": "Mountain lake at dawn", "color": "blue"},
        {"id": "u3", "title": "Coffee cup", "color": "grey"},
        {"id": "u4", "title": "Fourth card photo, beyond per_page", "color": "red"},
    ],
    "pexels": [
        {"id": "p1", "title": "Person paying with a credit card", "color": "green"},
        {"id": "p2", "title": "Beach", "color": "blue"},
    ],
    "pixabay": [
        {"id": "x1", "title": "Card payment terminal", "color": "blue"},
        {"id": "x2", "title": "City skyline", "color": "grey"},
        {"id": "x3", "title": "Forest path", "color": "grey"},
    ],
    "openverse": [
        {"id": "o1", "title": "Metal credit card close-up", "color": "red", "kind": "html"},
        {"id": "o2", "title": "Sunset over water", "color": "blue"},
    ],
    "wikimedia": [
        {"id": "w1", "title": "Credit card reader", "color": "red", "kind": "huge"},
        {"id": "w2", "title": "Airport terminal", "color": "grey"},
        {"id": "w3", "title": "Card logo", "color": "red", "mime": "image/svg+xml"},
    ],
}


class ImageServers:
    """All five, started and stopped together."""

    def __init__(self, delays=None):
        delays = delays or {}
        self.servers = {name: cls(delay=delays.get(name, 0.0)) for name, cls in CLASSES.items()}

    def __getitem__(self, name):
        return self.servers[name]

    def __enter__(self):
        for server in self.servers.values():
            server.start()
        return self

    def __exit__(self, *exc):
        for server in self.servers.values():
            server.stop()

    def configure(self, config):
        for name, server in self.servers.items():
            config["images"][name]["base_url"] = server.url
            if server.key_required:
                config["images"][name]["key"] = server.key
        config["images"]["timeout_seconds"] = 2
        config["images"]["max_image_bytes"] = 300_000
        return config
