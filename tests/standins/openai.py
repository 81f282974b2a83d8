"""An OpenAI-compatible chat-completions server (POST <base>/chat/completions).

Request: {"model", "messages": [{"role", "content"}], "temperature", "max_tokens"};
content is a string, or for vision a list of {"type": "text"} and
{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}} parts.
Reply: {"id", "object": "chat.completion", "created", "model",
"choices": [{"index": 0, "message": {"role": "assistant", "content"}, "finish_reason"}],
"usage": {...}}. Errors use OpenAI's {"error": {"message", "type", "code"}} shape.

`faults` is a queue consumed one per request: "429" (with Retry-After),
"500", "503", "slow" (answers after `slow_seconds`), "malformed" (a 200 whose body
is not JSON), "garbage" (a well-formed reply whose content is nonsense).
Without a fault the reply comes from `newsroom`, a deterministic fake model that
reads the prompt's `Task:` line and answers in the documented contract;
`overrides[task]` replaces one task's answer (a string or a function of the request).
`hold_from = N` holds the Nth request and all later ones until `released.set()`
(a run can be killed at a known point).
"""

import base64
import io
import json
import re
import threading
import time

from PIL import Image

from . import Standin


class OpenAIStandin(Standin):
    def __init__(self, api_key="test-key", retry_after="1", slow_seconds=2.0):
        super().__init__()
        self.api_key = api_key
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.faults = []
        self.overrides = {}
        self.tasks = []
        self.hold_from = None  # hold the Nth request (1-based) and every later one...
        self.released = threading.Event()  # ...until this is set

    @property
    def base_url(self):
        return self.url + "/v1"

    def handle(self, handler, request):
        if request["method"] != "POST" or request["path"] != "/v1/chat/completions":
            return handler.reply(404, error("Not found", "invalid_request_error", "not_found"))
        if self.api_key and request["headers"].get("authorization") != f"Bearer {self.api_key}":
            return handler.reply(401, error("Invalid API key", "invalid_request_error", "invalid_api_key"))
        try:
            body = json.loads(request["body"])
            model, messages = body["model"], body["messages"]
        except (ValueError, KeyError):
            return handler.reply(400, error("Invalid JSON body", "invalid_request_error", None))
        task = task_of(messages)
        with self.lock:
            self.tasks.append(task)
            number = len(self.tasks)
            fault = self.faults.pop(0) if self.faults else None
        if self.hold_from and number >= self.hold_from:
            self.released.wait(30)
        if fault == "429":
            return handler.reply(
                429,
                error("Rate limit reached", "rate_limit_exceeded", "rate_limit_exceeded"),
                headers={"Retry-After": self.retry_after},
            )
        if fault in ("500", "503"):
            return handler.reply(int(fault), error("Internal server error", "server_error", None))
        if fault == "slow":
            time.sleep(self.slow_seconds)
        if fault == "malformed":
            return handler.reply(200, '{"id": "chatcmpl-1", "choices": [{"message": ')
        if fault == "garbage":
            content = "I'm sorry, as a language model I cannot help with that. ¯\\_(ツ)_/¯"
        elif task in self.overrides:
            override = self.overrides[task]
            content = override(body) if callable(override) else override
        else:
            content = newsroom(task, messages)
        handler.reply(200, completion(model, content))


def error(message, type, code):
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def completion(model, content):
    return {
        "id": f"chatcmpl-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }


def text_of(message):
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")


def task_of(messages):
    for message in messages:
        match = re.search(r"Task: (\w+)\.", text_of(message))
        if match:
            return match.group(1)
    return "unknown"


# --- The fake newsroom -------------------------------------------------------


def newsroom(task, messages):
    user = text_of(messages[-1]) if messages[-1]["role"] == "user" else ""
    if task == "write_article":
        return write(user)
    if task == "revise_article":
        article = first_json(user)
        article["body_html"] += "<p>The offer ends on 31 March; the end date is confirmed by the issuer.</p>"
        return fenced(article)
    if task == "critique_article":
        if "end date" in user:
            return json.dumps({"score": 8, "issues": []})
        return json.dumps({"score": 6, "issues": ["State the offer's end date."]})
    if task == "fill_details":
        return json.dumps(
            {
                "key_details": [["Bonus", "100,000 points"], ["Annual fee", "$95"]],
                "links": [{"title": "Issuer page", "url": "https://issuer.example/offer"}],
            }
        )
    if task == "persona_take":
        return "Worth opening if you can meet the spend naturally; skip it if you hold the card already."
    if task == "revise_for_editor":
        article = first_json(user)
        feedback = user.split("Editor's feedback:", 1)[1].strip()
        article["body_html"] += f"<p>Revised for the editor: {feedback} The end date is 31 March.</p>"
        article["persona_take"] = "Revised take: act before the end date if the spend fits your budget."
        return json.dumps(article)
    if task == "score_image_metadata":
        return score_metadata(user)
    if task == "score_image":
        return score_image(messages[-1])
    return "Unknown task."


def write(user):
    sources = re.findall(r"^\d+\. \[([^\]]*)\] (.+)$", user, re.M)
    urls = re.findall(r"^\s+URL: (\S+)$", user, re.M)
    title = sources[0][1] if sources else "A story"
    body = (
        f"<p>{title}. Several sites report the same change, and the details agree across them.</p>"
        "<p>Readers who were waiting for a better offer now have one.</p>"
        '<script>alert("model output is never trusted")</script>'
    )
    article = {
        "title": title,
        "tldr": f"{title}: what changed and who should care.",
        "key_details": [],
        "body_html": body,
        "links": [],
        "sources": [{"title": t, "url": u, "site": s} for (s, t), u in zip(sources, urls, strict=False)],
    }
    # models like to wrap JSON in prose and fences; the parser must cope
    return "<think>Plan the article.</think>Here is the article:\n" + fenced(article)


def fenced(data):
    return "```json\n" + json.dumps(data, indent=1) + "\n```"


def first_json(text):
    start = text.index("{")
    return json.JSONDecoder().raw_decode(text, start)[0]


def score_metadata(user):
    """Credit-card-looking metadata scores high; anything else low."""
    candidates = first_json(user[user.index("Candidates:") :].replace("Candidates:", "", 1).lstrip())["candidates"]
    scores = []
    for c in candidates:
        text = json.dumps(c).lower()
        scores.append({"id": c["id"], "score": 9 if "card" in text else 3})
    return json.dumps({"scores": scores})


def score_image(message):
    """Look at the thumbnail: red is 'specific to the article', green fair, anything else poor."""
    url = next(p["image_url"]["url"] for p in message["content"] if p.get("type") == "image_url")
    data = base64.b64decode(url.split(",", 1)[1])
    image = Image.open(io.BytesIO(data)).convert("RGB")
    r, g, b = image.resize((1, 1)).getpixel((0, 0))
    if r > 150 and g < 100 and b < 100:
        score, why = 9, "shows the card itself"
    elif g > 150 and r < 100 and b < 100:
        score, why = 7, "related but generic"
    else:
        score, why = 2, "unrelated"
    return json.dumps({"score": score, "reason": why})
