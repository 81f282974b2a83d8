"""Reader pages: the production path against the limit and against the app alone.

Builds a realistic site in a temp dir (every seed card, a handful of approved
articles, `app.py publish`), starts the app alone on waitress and ONE Caddy with
two loopback sites, then measures every reader page type with wrk against three
targets, interleaved so the machine's noise hits all three alike:

  limit       Caddy's bare `file_server` serving a plain copy of the page's bytes:
              the fastest this machine can answer that page over HTTP.
  production  the toolkit's own Caddy site (infra/templates/site.caddy.j2, rendered
              as infra/tasks/caddy.py renders it) on public/, falling through to the
              app: what readers get.
  app         `python app.py serve` on waitress, no Caddy.

Before any load, each page must come back 200 with exactly the published file's
bytes from every target; a benchmark of a wrong response is worthless. Prints
requests/s, p50 and p99 per page and target, the CPU time Caddy and the app spent
per request (steadier than requests/s on a busy machine), and each target's
requests/s as a ratio of the limit's in the same round. Exits 1 if production is
below --goal of the limit for any page (unless --no-goal-check), or if wrk saw
errors or non-2xx answers.

    .venv/bin/python bench/readers.py [--seconds 3] [--rounds 3] [--connections 32]

Needs caddy and wrk on PATH (apt-get install caddy wrk). Progress goes to stderr,
the results to stdout (bench/results/readers.txt is that output).
"""

import argparse
import contextlib
import datetime
import os
import platform
import re
import runpy
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import NamedTuple

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import store  # noqa: E402
import workflow  # noqa: E402

TARGETS = ["limit", "production", "app"]
CARD = "amex-platinum"  # a card the articles below mention, so its Recent Changes list is filled

# Reader page types, by URL; "{article}" is the newest deal the bench publishes.
PAGES = [
    ("home", "/"),
    ("deals", "/deals"),
    ("news", "/news"),
    ("article", "/articles/{article}"),
    ("cards", "/cards"),
    ("card", f"/cards/{CARD}"),
    ("feed", "/feed.xml"),
    ("sitemap", "/sitemap.xml"),
    ("api cards", "/api/cards"),
    ("api card", f"/api/cards/{CARD}"),
]


# --- The site ------------------------------------------------------------------

ARTICLES = [
    dict(
        type="summary",
        title="United Club Infinite annual fee rises to $695 for new cardmembers",
        tldr="The United Club Infinite card now costs $695 a year for new applicants; existing "
        "cardmembers see the change at their first renewal after the effective date.",
        paragraphs=[
            "United and Chase raised the annual fee on the United Club Infinite card from $525 to $695 "
            "for new cardmembers. The card keeps its headline benefit, a full United Club membership, "
            "and adds statement credits that the issuer says offset the increase for frequent flyers.",
            "Existing cardmembers keep the old fee until their first renewal after the effective date. "
            "Chase says they will be notified at least 45 days before the new fee posts.",
            "A United Club membership bought outright costs more than the new fee, so the card still "
            "makes sense for anyone who visits a club a few times a month. Occasional flyers are "
            "better served by a card with a lower fee and a handful of one-time passes.",
        ],
        key_details=[["Annual fee", "$695 (was $525)"], ["Effective", "New applicants now"], ["Lounge", "United Club"]],
    ),
    dict(
        type="deal",
        title="Hilton Aspire and Marriott Bonvoy Brilliant both carry elevated offers this month",
        tldr="Both premium hotel cards have raised their welcome offers at the same time, a rare overlap "
        "worth a look if you stay at either chain more than a few nights a year.",
        paragraphs=[
            "The Hilton Aspire now offers 175,000 Hilton Honors points after $6,000 in purchases within "
            "six months, up from 150,000. The card's automatic Diamond status and annual free night "
            "reward are unchanged.",
            "At the same time the Marriott Bonvoy Brilliant offers 185,000 points after $6,000 in six "
            "months. Its annual free night certificate is good for a property costing up to 85,000 points.",
            "Neither offer has a published end date. Hotel points are worth less per point than "
            "transferable currencies, so compare the offers by the nights they buy, not the number.",
        ],
        key_details=[["Hilton Aspire", "175,000 points"], ["Bonvoy Brilliant", "185,000 points"]],
    ),
    dict(
        type="roundup",
        title="This week in points: Bilt, Citi Double Cash and Freedom Flex changes",
        tldr="Bilt adds a new rent day promotion, Citi Double Cash gains a transfer partner and the "
        "Freedom Flex publishes its next quarterly categories.",
        paragraphs=[
            "Bilt's Rent Day promotion this month doubles points on dining for cardholders who make five "
            "transactions in the statement period. The Bilt Mastercard still earns points on rent without "
            "a transaction fee.",
            "Citi Double Cash cardholders can now move ThankYou points to one more airline partner at a "
            "reduced ratio, which makes the no-fee card a useful companion to a premium Citi card.",
            "The Chase Freedom Flex quarterly categories for the next quarter are grocery stores and "
            "fitness clubs, 5% back on up to $1,500 in combined purchases after activation.",
        ],
        key_details=[["Bilt", "Rent Day dining bonus"], ["Freedom Flex", "5% groceries and fitness"]],
    ),
    dict(
        type="summary",
        title="Capital One Venture X changes guest access to its lounges",
        tldr="From next year, Venture X cardholders pay for guests in Capital One Lounges and Priority "
        "Pass lounges unless they spend $75,000 a year on the card.",
        paragraphs=[
            "Capital One is ending free guest access for Capital One Venture X cardholders in its own "
            "lounges and in Priority Pass lounges. Guests will cost $45 each per visit in Capital One "
            "Lounges and $35 in Priority Pass lounges.",
            "Cardholders who spend $75,000 or more in a calendar year keep complimentary guest access "
            "for the following year. Authorised users will no longer get their own lounge access "
            "without an additional fee of $125 a year.",
            "The card's $300 travel credit and 10,000 anniversary miles still cover most of the $395 fee, "
            "so the card remains good value for a solo traveller; families lose the most.",
        ],
        key_details=[["Guest fee", "$45 Capital One Lounge, $35 Priority Pass"], ["Spend to keep", "$75,000 a year"]],
    ),
    dict(
        type="deal",
        title="Amex Platinum offer: up to 175,000 points for some applicants",
        tldr="Some applicants see a 175,000-point welcome offer on the Amex Platinum, the highest public "
        "offer this year; the Amex Gold has a matching bump.",
        paragraphs=[
            "American Express is showing some applicants a welcome offer of 175,000 Membership Rewards "
            "points on the Amex Platinum after $8,000 in purchases within six months. The standard public "
            "offer is 80,000 points.",
            "The offer is targeted: it appears in the card finder tool and through some referral links, and "
            "not to everyone. Checking costs nothing and does not affect your credit score.",
            "The Amex Gold shows a similar targeted offer of 100,000 points after $6,000 in six months. "
            "Amex's once-per-lifetime rule applies to both cards, so applicants who held either before "
            "should read the terms before applying.",
        ],
        key_details=[["Bonus", "175,000 points"], ["Spend", "$8,000 in 6 months"], ["Annual fee", "$895"]],
    ),
    dict(
        type="deal",
        title="Chase Sapphire Reserve welcome bonus climbs to 125,000 points",
        tldr="The Sapphire Reserve's welcome offer is 125,000 Ultimate Rewards points after $6,000 in three "
        "months, the card's best public offer; the Sapphire Preferred stays at 75,000.",
        paragraphs=[
            "Chase raised the Sapphire Reserve welcome offer to 125,000 points after $6,000 in purchases in "
            "the first three months. The card's annual fee is $795 after its latest refresh.",
            "Ultimate Rewards points transfer to Hyatt, United, Southwest and a dozen other partners. At a "
            "conservative cent and a half each, the bonus is worth well over the first year's fee.",
            "The Sapphire Preferred offer stays at 75,000 points. Chase allows only one Sapphire card at a "
            "time and no new bonus within three years of the last one, so pick the Reserve only if its "
            "credits suit how you travel.",
            "The offer has no published end date; Chase raised and withdrew a similar offer last year within weeks.",
        ],
        key_details=[["Bonus", "125,000 points"], ["Spend", "$6,000 in 3 months"], ["Annual fee", "$795"]],
    ),
]


def body_html(paragraphs):
    return "".join(f"<p>{text}</p>" for text in paragraphs)


def add_articles(db_path):
    """Approve the articles the way the desk does (draft -> approved links their cards).

    Returns the slug of the newest deal, the page the bench measures as "article".
    """
    conn = store.connect(db_path)
    try:
        newest_deal = None
        for number, spec in enumerate(ARTICLES):
            fields = dict(spec)
            paragraphs = fields.pop("paragraphs")
            article_id = store.insert_article(
                conn,
                body_html=body_html(paragraphs),
                links=[{"title": "Issuer's offer page", "url": f"https://example.com/offers/{number}"}],
                sources=[
                    {"title": "Report", "url": f"https://news.example.com/{number}", "site": "news.example.com"},
                    {"title": "Analysis", "url": f"https://blog.example.org/{number}", "site": "blog.example.org"},
                ],
                persona_take="Worth it if the credits match what you already spend; skip it if they do not.",
                critic_score=8,
                image_url=f"https://upload.wikimedia.org/bench/{number}.jpg",
                image_thumb_url=f"https://upload.wikimedia.org/bench/thumb/{number}.jpg",
                image_alt="A payment card on a table",
                image_attribution={
                    "author": "A. Photographer",
                    "source": "wikimedia",
                    "license": "CC BY-SA 4.0",
                    "link": f"https://commons.wikimedia.org/wiki/File:Bench_{number}.jpg",
                },
                **fields,
            )
            article = workflow.transition(conn, article_id, "approved", "editor")
            if spec["type"] == "deal":
                newest_deal = article["slug"]
        return newest_deal
    finally:
        conn.close()


def run_app(config_path, *command):
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "app.py"), "--config", config_path, *command],
        check=True,
        stdout=sys.stderr,
    )


def build_site(root):
    """The server's data layout under `root` (root/data/milesahead.db, root/data/public).

    Returns (config path, public dir, slug of the measured article).
    """
    data = os.path.join(root, "data")
    os.makedirs(data)
    db_path = os.path.join(data, "milesahead.db")
    config_path = os.path.join(root, "config.yaml")
    with open(config_path, "w") as f:
        f.write(
            "site:\n"
            "  base_url: https://milesahead.example.com\n"
            "database:\n"
            f"  path: {db_path}\n"
            "llm:\n"
            f"  cache_dir: {os.path.join(data, 'llm-cache')}\n"
        )
    run_app(config_path, "migrate")
    run_app(config_path, "seed-cards")
    article = add_articles(db_path)
    run_app(config_path, "publish")
    return config_path, os.path.join(data, "public"), article


class Page(NamedTuple):
    name: str  # the page type, as the table shows it
    url: str  # what readers ask for (production and the app)
    file: str  # the published file: the bytes every target must send
    limit_url: str  # the plain copy's address on the limit site
    size: int


def published_file(public, url):
    import publish  # the app's own URL -> file rule

    return os.path.join(public, publish.file_for(url))


# --- Caddy ---------------------------------------------------------------------


def host_data(app_root, app_port, site_address):
    """The toolkit's group data for a host whose app root is `app_root`, as pyinfra would hold it.

    Paths under the real app root (/opt/milesahead) move under `app_root`, so a
    template deriving public/ from them finds the bench's published pages.
    """
    defaults = {
        name: value
        for name, value in runpy.run_path(os.path.join(ROOT, "infra", "group_data", "all.py")).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    real_root = defaults["app_root"]
    for name, value in defaults.items():
        if isinstance(value, str) and (value == real_root or value.startswith(real_root + "/")):
            defaults[name] = app_root + value[len(real_root) :]
    defaults.update(app_root=app_root, app_port=app_port, site_address=site_address, caddy_upstream="")
    return types.SimpleNamespace(**defaults)


def production_site(app_root, app_port, port):
    """infra/templates/site.caddy.j2 rendered with pyinfra's template loader and caddy.site_context.

    Variables the template uses beyond site_context come from the host's data, as
    pyinfra passes `host` too; one the bench cannot fill stops it with its name.
    """
    import jinja2.meta
    from pyinfra.api.util import get_template

    from infra.tasks import TEMPLATES
    from infra.tasks.caddy import site_context

    data = host_data(app_root, app_port, f"http://127.0.0.1:{port}")
    context = {"host": types.SimpleNamespace(data=data, name="bench"), **site_context(data)}
    path = str(TEMPLATES / "site.caddy.j2")
    with open(path) as f:
        wanted = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(f.read()))
    for name in sorted(wanted - set(context)):
        if not hasattr(data, name):
            raise SystemExit(f"site.caddy.j2 uses {name!r}: neither caddy.site_context nor group_data gives it")
        context[name] = getattr(data, name)
    text = get_template(path).render(context)
    if "/opt/" in text:
        raise SystemExit(f"the rendered site still points at the server's paths:\n{text}")
    return text


def caddyfile(limit_dir, limit_port, production):
    return (
        "{\n"
        "\tadmin off\n"
        "\tauto_https off\n"
        "\tdefault_bind 127.0.0.1\n"
        "}\n\n"
        f"http://127.0.0.1:{limit_port} {{\n"
        f"\troot * {limit_dir}\n"
        "\tfile_server\n"
        "}\n\n" + production
    )


# --- Processes -----------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(command, log_path, env=None):
    """A server process for the length of the block; its output goes to log_path."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(url, process, log_path, timeout=60):
    """Poll until url answers 200 (the app's /healthz is 503 while it publishes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}:\n{tail(log_path)}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready within {timeout}s:\n{tail(log_path)}")


def tail(path, lines=20):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


# --- Checking and measuring ----------------------------------------------------


def check_answers(pages, bases):
    """Every target answers every page 200 with the published bytes.

    Returns (failures, notes): failures stop the bench; notes are headers where
    production differs from the app (the contract says Caddy sends the app's
    Content-Type and Cache-Control), reported beside the numbers.
    """
    failures, notes = [], []
    for name, url, file, limit_url, _size in pages:
        with open(file, "rb") as f:
            expected = f.read()
        answers = {}
        for target in TARGETS:
            address = bases[target] + (limit_url if target == "limit" else url)
            response = answers[target] = requests.get(address, headers={"Accept-Encoding": "identity"}, timeout=10)
            if response.status_code != 200:
                failures.append(f"{name} {target} {address}: HTTP {response.status_code}")
            elif response.content != expected:
                failures.append(
                    f"{name} {target} {address}: {len(response.content)} bytes differ from "
                    f"{os.path.relpath(file)} ({len(expected)} bytes)"
                )
        for header in ("Content-Type", "Cache-Control"):
            production, app = (answers[t].headers.get(header) for t in ("production", "app"))
            if production != app:
                notes.append(f"{name}: {header} from production {production!r}, from the app {app!r}")
    return failures, notes


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out):
    """requests/s, p50 and p99 in ms, and the count of errors (socket errors plus non-2xx/3xx)."""

    def latency(percent):
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M).groups()
        return float(value) * UNITS_MS[unit]

    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": latency(50), "p99": latency(99), "errors": errors, "requests": requests_done}


def cpu_seconds(pids):
    """User + system CPU time the processes have used, all their threads included."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url, args, servers):
    """One wrk run, plus the CPU the servers (Caddy and the app) spent per request meanwhile.

    Throughput moves with whatever else the machine runs; the servers' own CPU time per
    request moves much less, so it shows what each path costs even on a busy machine.
    """
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
    if args.accept_encoding:
        command += ["-H", f"Accept-Encoding: {args.accept_encoding}"]
    before = cpu_seconds(servers)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(servers) - before
    figures = parse_wrk(out)
    figures["cpu_us"] = used / max(figures["requests"], 1) * 1e6
    return figures


def measure(pages, bases, args, servers):
    """Round after round, each page on the three targets back to back, the order rotating.

    Returns {(page name, target): figures}: the median over the rounds of requests/s,
    p50, p99 and server CPU per request, errors summed, and "ratio", the median of
    each round's requests/s over the limit's in the same round (neighbours in time
    share the machine's noise, so paired ratios hold steadier than a ratio of medians).
    """
    samples = {}
    total = args.rounds * len(pages) * len(TARGETS)
    done = 0
    for round_number in range(args.rounds):
        for index, (name, url, _file, limit_url, _size) in enumerate(pages):
            shift = (round_number + index) % len(TARGETS)
            for target in TARGETS[shift:] + TARGETS[:shift]:
                done += 1
                address = bases[target] + (limit_url if target == "limit" else url)
                print(f"[{done}/{total}] {name:10} {target:10} {address}", file=sys.stderr, flush=True)
                samples.setdefault((name, target), []).append(wrk(address, args, servers))
    results = {}
    for (name, target), runs in samples.items():
        limits = samples[(name, "limit")]
        results[(name, target)] = {
            "rps": statistics.median(s["rps"] for s in runs),
            "p50": statistics.median(s["p50"] for s in runs),
            "p99": statistics.median(s["p99"] for s in runs),
            "cpu_us": statistics.median(s["cpu_us"] for s in runs),
            "errors": sum(s["errors"] for s in runs),
            "ratio": statistics.median(s["rps"] / limit["rps"] for s, limit in zip(runs, limits, strict=True)),
        }
    return results


# --- Report --------------------------------------------------------------------


def machine_facts():
    caddy = subprocess.run(["caddy", "version"], capture_output=True, text=True).stdout.split()[0]
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]
    return (
        f"nproc {os.cpu_count()}, {platform.machine()}, caddy {caddy}, wrk {wrk_version}, "
        f"python {platform.python_version()}, load average {os.getloadavg()[1]:.1f} (5 min, at the end)"
    )


def report(pages, results, args, started):
    """The table: per target requests/s, p50 and p99 (ms), server CPU µs per request, ratio to the limit."""

    def group(target):
        return f"{target:>7} {'p50':>5} {'p99':>6} {'cpu':>4}" + ("" if target == "limit" else f" {'ratio':>5}")

    def cells(figures, target):
        text = f"{figures['rps']:>7.0f} {figures['p50']:>5.1f} {figures['p99']:>6.1f} {figures['cpu_us']:>4.0f}"
        return text + ("" if target == "limit" else f" {figures['ratio']:>5.2f}")

    header = f"{'page':10} {'bytes':>6} | " + " | ".join(group(target) for target in TARGETS)
    lines = [
        f"# {' '.join(['bench/readers.py', *sys.argv[1:]])}",
        f"# {started.isoformat(timespec='seconds')}; {machine_facts()}",
        f"# wrk -t{args.threads} -c{args.connections} -d{args.seconds}s --latency"
        + (f" -H 'Accept-Encoding: {args.accept_encoding}'" if args.accept_encoding else "")
        + f"; median of {args.rounds} interleaved rounds",
        "# requests/s; p50, p99 latency in ms; cpu = Caddy + app CPU µs per request;"
        " ratio = requests/s over the limit's in the same round",
        header,
        "-" * len(header),
    ]
    for page in pages:
        row = " | ".join(cells(results[(page.name, target)], target) for target in TARGETS)
        lines.append(f"{page.name:10} {page.size:>6} | {row}")
    return "\n".join(lines)


# --- Main ----------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/readers.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--goal", type=float, default=0.9, help="production's least share of the limit (default 0.9)")
    parser.add_argument("--no-goal-check", action="store_true", help="report only; exit 0 even below the goal")
    parser.add_argument(
        "--accept-encoding",
        metavar="VALUE",
        default="",
        help="send this Accept-Encoding with every wrk request (default none: wrk's plain GET, no compression)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (site, Caddyfile, logs) and print it")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for tool in ("caddy", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH (apt-get install {tool})")

    started = datetime.datetime.now().astimezone()
    tmp = tempfile.mkdtemp(prefix="bench-readers-")
    try:
        with contextlib.ExitStack() as stack:
            results, pages, notes = run(args, tmp, stack)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(report(pages, results, args, started))
    if notes:
        print("\nheaders where production and the app differ:\n  " + "\n  ".join(notes))
    status = 0
    errors = [f"{name} {target}: {r['errors']}" for (name, target), r in results.items() if r["errors"]]
    if errors:
        print("\nwrk saw errors or non-2xx answers, so these numbers do not count: " + ", ".join(errors))
        status = 1
    missed = [page.name for page in pages if results[(page.name, "production")]["ratio"] < args.goal]
    if missed:
        print(f"\nproduction below {args.goal:.0%} of the limit: {', '.join(missed)}")
        status = status or (0 if args.no_goal_check else 1)
    else:
        print(f"\nproduction at or above {args.goal:.0%} of the limit for every page type")
    return status


def run(args, tmp, stack):
    app_root = os.path.join(tmp, "srv")
    print(f"building the site in {app_root}", file=sys.stderr)
    config_path, public, article = build_site(app_root)

    pages = []
    limit_dir = os.path.join(tmp, "limit")
    for name, pattern in PAGES:
        url = pattern.format(article=article)
        file = published_file(public, url)
        # the limit serves a plain copy under the same relative name: no rewrite, no index lookup
        relative = os.path.relpath(file, public)
        os.makedirs(os.path.dirname(os.path.join(limit_dir, relative)), exist_ok=True)
        shutil.copyfile(file, os.path.join(limit_dir, relative))
        pages.append(Page(name, url, file, "/" + relative, os.path.getsize(file)))

    ports = {target: free_port() for target in TARGETS}
    bases = {target: f"http://127.0.0.1:{port}" for target, port in ports.items()}

    app_log = os.path.join(tmp, "app.log")
    app = stack.enter_context(
        running(
            [
                sys.executable,
                os.path.join(ROOT, "app.py"),
                "--config",
                config_path,
                "serve",
                "--port",
                str(ports["app"]),
            ],
            app_log,
        )
    )
    wait_ready(bases["app"] + "/healthz", app, app_log)

    caddy_dir = os.path.join(tmp, "caddy")
    os.makedirs(caddy_dir)
    config = os.path.join(caddy_dir, "Caddyfile")
    with open(config, "w") as f:
        f.write(caddyfile(limit_dir, ports["limit"], production_site(app_root, ports["app"], ports["production"])))
    env = {
        **os.environ,
        "HOME": caddy_dir,
        "XDG_DATA_HOME": os.path.join(caddy_dir, "data"),
        "XDG_CONFIG_HOME": os.path.join(caddy_dir, "config"),
    }
    checked = subprocess.run(
        ["caddy", "validate", "--adapter", "caddyfile", "--config", config], env=env, capture_output=True, text=True
    )
    if checked.returncode:
        raise SystemExit(f"caddy refuses {config}:\n{checked.stderr[-2000:]}")
    caddy_log = os.path.join(tmp, "caddy.log")
    caddy = stack.enter_context(running(["caddy", "run", "--adapter", "caddyfile", "--config", config], caddy_log, env))
    wait_ready(bases["limit"] + pages[0].limit_url, caddy, caddy_log)
    wait_ready(bases["production"] + "/", caddy, caddy_log)

    failures, notes = check_answers(pages, bases)
    if failures:
        raise SystemExit("wrong answers, nothing measured:\n  " + "\n  ".join(failures))
    print("every target answers every page 200 with the published bytes", file=sys.stderr)
    return measure(pages, bases, args, [caddy.pid, app.pid]), pages, notes


if __name__ == "__main__":
    sys.exit(main())
