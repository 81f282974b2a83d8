"""The editorial desk: queues, review, actions, pipeline runs, and its JSON API.

Sections, top to bottom: pages, actions, pipeline runs, JSON API, routes.
Every page and API call passes a guard of auth.py (login, session, CSRF) first;
the state machine itself lives in workflow.py, and handlers here only call it.
"""

import contextlib
import logging

import bottle
from bottle import request, response

import auth
import pipeline
import publish
import store
import web
import workflow
from auth import EDITOR, api, api_error, editor_page, private_headers, refuse, render

log = logging.getLogger("milesahead.admin")


# The action a desk URL names (/admin/articles/<id>/<action>) -> the status it moves the article to.
ACTION_TARGETS = {
    "approve": "approved",
    "reject": "rejected",
    "request-revision": "revision_requested",
    "submit": "pending",
    "unpublish": "unpublished",
}
DONE = {
    "approved": "Approved: the article is live and linked to the cards it mentions.",
    "rejected": "Rejected.",
    "revision_requested": "Revision requested: the pipeline will revise it with your feedback.",
    "pending": "Back in the review queue.",
    "unpublished": "Unpublished: readers can no longer see it, and its Recent Changes entries are gone.",
}


# --- Pages ---------------------------------------------------------------------


def load_article(article_id):
    article = store.get_article(web.db(), article_id)
    if article is None:
        bottle.abort(404, f"No article with id {article_id}.")
    return article


@editor_page
def queues():
    conn = web.db()
    selected = request.query.get("status", "")
    if selected and selected not in store.ARTICLE_STATUSES:
        bottle.abort(400, f"status must be one of {', '.join(store.ARTICLE_STATUSES)}")
    statuses = [selected] if selected else QUEUE_ORDER
    lists = [(s, store.list_by_status(conn, s, limit=500 if selected else 20)) for s in statuses]
    return render(
        "admin/queues",
        "Editorial desk",
        counts=store.status_counts(conn),
        order=QUEUE_ORDER,
        lists=lists,
        selected=selected,
        runs=store.list_runs(conn, 5),
        pipeline=pipeline_status(),
    )


# The order the desk works in: what needs a decision first.
QUEUE_ORDER = ["pending", "draft", "revision_requested", "approved", "unpublished", "rejected"]


@editor_page
def review(article_id):
    conn = web.db()
    article = load_article(article_id)
    history = store.revisions(conn, article_id)
    diff_from, diff_to, diff = choose_diff(history)
    return render(
        "admin/article",
        f"Review: {article['title']}",
        article=article,
        targets=workflow.allowed_targets(article["status"]),
        actions={target: action for action, target in ACTION_TARGETS.items()},
        cards=workflow.find_cards(conn, article),
        linked=store.article_linked_cards(conn, article_id),
        revisions=history,
        events=store.events(conn, article_id),
        diff=diff,
        diff_from=diff_from,
        diff_to=diff_to,
        types=store.ARTICLE_TYPES,
        key_details_text="\n".join(f"{label}: {value}" for label, value in article["key_details"]),
    )


def choose_diff(history, query=None):
    """The two revisions to compare: ?from=&to= (numbers), else the latest against the one before."""
    query = request.query if query is None else query
    if len(history) < 2:
        return None, None, []
    by_number = {r["number"]: r for r in history}
    try:
        new = int(query.get("to") or history[-1]["number"])
        old = int(query.get("from") or new - 1)
    except ValueError:
        bottle.abort(400, "from and to must be revision numbers")
    if old not in by_number or new not in by_number:
        bottle.abort(404, "No such revision.")
    return old, new, workflow.diff_revisions(by_number[old], by_number[new])


@editor_page
def preview(article_id):
    """Exactly the reader's article page, for any status (framed by the review page)."""
    article = load_article(article_id)
    body = web.render_article(article)
    private_headers(frame="SAMEORIGIN")
    response.set_header("Content-Security-Policy", web.PREVIEW_CSP)
    return body


# --- Actions ---------------------------------------------------------------------


class PagesUpdate:
    """What reader_pages_of tells its caller afterwards: error is "" when the reader pages
    followed the change, else why they could not."""

    def __init__(self):
        self.error = ""

    def problem(self):
        """What the editor must know when the reader pages did not follow a change."""
        if not self.error:
            return ""
        return f" But the reader pages could not be updated ({self.error}); run `python app.py publish`."


@contextlib.contextmanager
def reader_pages_of(article_id):
    """Around a change to an article: afterwards re-render exactly the reader pages it
    touched, as they were before (the old slug, cards it no longer links) and after.

    Both sets are read inside the change's own write transaction: read outside it,
    an unpublish racing an approve saw the article before the approve committed,
    found no pages to take down, and left it public. Inside, every commit is followed
    by a publish of the pages it changed, rendered after it, so public/ ends as a full
    publish of the committed database would leave it, whatever the interleaving.

    The change is saved first; a publish that fails is logged and told to the editor
    (the next full publish, at the latest the next restart, catches up) but never
    undoes the change, which the PagesUpdate it yields then says.
    """
    conn = web.db()
    update = PagesUpdate()
    with store.transaction(conn):  # workflow's own writes join it
        before = publish.article_pages(conn, article_id)
        yield update
        pages = before | publish.article_pages(conn, article_id)
    if not pages:
        return
    try:
        web.publisher().publish(pages)
    except Exception as e:
        log.exception("re-publishing the pages of article %s failed", article_id)
        update.error = str(e) or type(e).__name__


@editor_page
def act(article_id, action):
    target = ACTION_TARGETS[action]
    feedback = web.form().get("feedback", "")
    back = f"/admin/articles/{article_id}"
    try:
        with reader_pages_of(article_id) as update:
            workflow.transition(web.db(), article_id, target, EDITOR, feedback=feedback)
    except workflow.ArticleNotFound as e:
        bottle.abort(404, str(e))
    except workflow.TransitionRefused as e:
        refuse(409, str(e), back=back)
    except ValueError as e:
        refuse(400, str(e), back=back)
    auth.flash(DONE[target] + update.problem())
    bottle.redirect(back)


def string_field(data, name, default=""):
    """data[name] as a string: JSON may send any type, and the message names the field."""
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {json_type(value)}")
    return value


def json_type(value):
    return {dict: "an object", list: "a list", bool: "true or false"}.get(type(value), "a number")


def edited_fields(data):
    """Fields present in an edit (form or JSON); key details arrive as 'Label: value' lines."""
    fields = {k: string_field(data, k) for k in ("title", "tldr", "type", "body_html", "persona_take") if k in data}
    if "key_details" in data:
        value = data["key_details"]
        if isinstance(value, str):
            pairs = []
            for line in value.splitlines():
                if not line.strip():
                    continue
                label, sep, text = line.partition(":")
                if not sep or not label.strip():
                    raise ValueError(f"Key details: write each line as 'Label: value' (got {line.strip()!r}).")
                pairs.append([label.strip(), text.strip()])
            value = pairs
        elif not (
            isinstance(value, list)
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value)
        ):
            raise ValueError("key_details must be a list of [label, value] pairs of strings")
        fields["key_details"] = [list(p) for p in value]
    return fields


def apply_edit(article_id, data, actor):
    """Shared by the form and the API: returns (article, changed field names, PagesUpdate)."""
    conn = web.db()
    article = load_article(article_id)
    changes = workflow.changed_fields(article, edited_fields(data))
    if not changes:
        return article, [], PagesUpdate()
    note = string_field(data, "note").strip() or "edited by hand"
    with reader_pages_of(article_id) as update:
        article = workflow.revise(conn, article_id, actor, note=note, **changes)
    return article, sorted(changes), update


@editor_page
def edit(article_id):
    back = f"/admin/articles/{article_id}"
    try:
        article, changed, update = apply_edit(article_id, web.form(), EDITOR)
    except ValueError as e:
        refuse(400, str(e), back=back)
    if changed:
        live = " The article is live: readers see the change now." if article["status"] == "approved" else ""
        auth.flash(f"Saved as a new revision ({', '.join(changed)}).{live}{update.problem()}")
    else:
        auth.flash("Nothing changed, so no new revision was made.")
    bottle.redirect(back)


# --- Pipeline runs -------------------------------------------------------------------


def pipeline_status():
    """(configured, reason) without ever failing the page."""
    try:
        return pipeline.is_configured(web.cfg())
    except Exception as e:
        log.exception("pipeline status check failed")
        return False, f"The pipeline's configuration could not be read: {e}"


def trigger_run():
    """Returns (started?, message)."""
    configured, reason = pipeline_status()
    if not configured:
        return False, f"Pipeline not configured: {reason}"
    try:
        return pipeline.trigger_run(web.cfg(), trigger="admin")
    except Exception as e:
        log.exception("pipeline trigger failed")
        return False, f"The pipeline could not start: {e}"


@editor_page
def runs_page():
    return render("admin/runs", "Pipeline runs", runs=store.list_runs(web.db(), 50), pipeline=pipeline_status())


@editor_page
def cards_page():
    """The same list as `app.py cards-report`: cards whose facts or sources are oldest first."""
    return render("admin/cards", "Card facts", report=store.cards_report(web.db()))


@editor_page
def start_run():
    _, message = trigger_run()
    auth.flash(message)
    bottle.redirect("/admin/runs")


# --- JSON API ------------------------------------------------------------------------
# Same actions, same rules, behind auth.api (a session cookie and CSRF header, or the token).


def api_body():
    try:
        data = request.json
    except RecursionError:  # the parser's own limit on nesting
        api_error(400, "The JSON is nested too deeply.")
    if data is not None:
        if not isinstance(data, dict):
            api_error(400, "Send a JSON object.")
        return data
    return dict(web.form())


def api_text(name):
    """A string field of the API body, or a 400 that names it."""
    try:
        return string_field(api_body(), name)
    except ValueError as e:
        api_error(400, str(e))


def api_article_data(conn, article):
    data = web.with_safe_urls(article)
    data["allowed_transitions"] = list(workflow.allowed_targets(article["status"]))
    data["linked_cards"] = store.article_linked_cards(conn, article["id"])
    data["mentioned_cards"] = [card["slug"] for card in workflow.find_cards(conn, article)]
    return data


def api_load(article_id):
    article = store.get_article(web.db(), article_id)
    if article is None:
        api_error(404, f"No article with id {article_id}.")
    return article


@api
def api_session(actor):
    session = auth.current_session()
    if session is None:
        return 200, {"actor": actor, "csrf_token": None}
    return 200, {
        "actor": actor,
        "csrf_token": auth.csrf_token(),
        "expires_at": session[0] + auth.auth().session_seconds,
    }


@api
def api_articles(actor):
    conn = web.db()
    status = request.query.get("status", "")
    if status and status not in store.ARTICLE_STATUSES:
        api_error(400, f"status must be one of {', '.join(store.ARTICLE_STATUSES)}")
    try:
        limit = min(max(int(request.query.get("limit", 100)), 1), 1000)
    except ValueError:
        api_error(400, "limit must be a whole number")
    statuses = [status] if status else store.ARTICLE_STATUSES
    articles = [a for s in statuses for a in store.list_by_status(conn, s, limit)]
    return 200, {"counts": store.status_counts(conn), "articles": articles}


@api
def api_article(article_id, actor):
    conn = web.db()
    data = api_article_data(conn, api_load(article_id))
    data["events"] = store.events(conn, article_id)
    data["revisions"] = store.revisions(conn, article_id)
    return 200, data


@api
def api_diff(article_id, actor):
    api_load(article_id)
    history = store.revisions(web.db(), article_id)
    old, new, changes = choose_diff(history)
    return 200, {"from": old, "to": new, "changes": changes}


def api_move(article_id, target, actor, feedback):
    conn = web.db()
    try:
        with reader_pages_of(article_id) as update:
            article = workflow.transition(conn, article_id, target, actor, feedback=feedback)
    except workflow.ArticleNotFound as e:
        api_error(404, str(e))
    except workflow.TransitionRefused as e:
        api_error(409, str(e), current=e.current, target=e.target)
    except ValueError as e:
        api_error(400, str(e))
    return 200, with_publish_error(api_article_data(conn, article), update)


def with_publish_error(data, update):
    if update.error:
        data["publish_error"] = update.error
    return data


@api
def api_transition(article_id, actor):
    target = api_text("to") if "to" in api_body() else api_text("status")
    return api_move(article_id, target, actor, api_text("feedback"))


@api
def api_action(article_id, action, actor):
    return api_move(article_id, ACTION_TARGETS[action], actor, api_text("feedback"))


@api
def api_edit(article_id, actor):
    api_load(article_id)
    try:
        article, changed, update = apply_edit(article_id, api_body(), actor)
    except ValueError as e:
        api_error(400, str(e))
    data = api_article_data(web.db(), article)
    data["changed"] = changed
    return 200, with_publish_error(data, update)


@api
def api_runs(actor):
    configured, reason = pipeline_status()
    return 200, {"configured": configured, "reason": reason, "runs": store.list_runs(web.db(), 50)}


@api
def api_start_run(actor):
    started, message = trigger_run()
    return (202 if started else 409), {"started": started, "message": message}


# --- Routes ----------------------------------------------------------------------------

ACTION_RULE = "<action:re:" + "|".join(ACTION_TARGETS) + ">"
ROUTES = [
    ("GET", "/admin", queues),
    ("GET", "/admin/", queues),
    ("GET", "/admin/articles/<article_id:int>", review),
    ("GET", "/admin/articles/<article_id:int>/preview", preview),
    ("POST", "/admin/articles/<article_id:int>/edit", edit),
    ("POST", f"/admin/articles/<article_id:int>/{ACTION_RULE}", act),
    ("GET", "/admin/runs", runs_page),
    ("POST", "/admin/runs", start_run),
    ("GET", "/admin/cards", cards_page),
    ("GET", "/api/admin/session", api_session),
    ("GET", "/api/admin/articles", api_articles),
    ("GET", "/api/admin/articles/<article_id:int>", api_article),
    ("GET", "/api/admin/articles/<article_id:int>/diff", api_diff),
    ("POST", "/api/admin/articles/<article_id:int>/transition", api_transition),
    ("POST", "/api/admin/articles/<article_id:int>/edit", api_edit),
    ("POST", f"/api/admin/articles/<article_id:int>/{ACTION_RULE}", api_action),
    ("GET", "/api/admin/runs", api_runs),
    ("POST", "/api/admin/runs", api_start_run),
]


def install(app):
    """Add the desk to the app: its login state, and its routes and auth.py's."""
    app.state.auth = auth.Auth(app.state.config)
    for method, path, handler in auth.ROUTES + ROUTES:
        app.route(path, method, handler)
