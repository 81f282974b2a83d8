"""Calls to the outside internet (feeds, image APIs and hosts, the models), each with a total deadline.

requests' `timeout` bounds each socket operation, not the call: a host that
drips 64 bytes a second never trips a 15 s read timeout, and a 5 MB cap takes
a day to reach. Here a call has one monotonic deadline covering connect, the
headers and the whole body. The body is read with read1 (whatever has arrived,
never waiting to fill a buffer) and the socket's timeout is cut to the time
left before every read, so a drip ends at the deadline, give or take a read.

STOP is set when the process is told to stop (SIGTERM, SIGINT): a call in
flight on any thread gives up at its next read, so a stopping run is not held
by a download or a model reply on a worker thread.
"""

import threading
import time

import requests
import urllib3

STOP = threading.Event()
PIECE = 64 * 1024


class DeadlineExceeded(requests.Timeout):
    """The call's total deadline passed (the message says how long it had)."""


class Stopped(requests.RequestException):
    """The process is stopping; the call was abandoned."""


class TooLarge(requests.RequestException):
    """The body went past the caller's byte cap."""


def describe(error, what="answer"):
    """A transport failure in a few words for the run record (`what` did not arrive in time),
    or None when `error` is not one: the caller then says what its own errors mean."""
    if isinstance(error, DeadlineExceeded):
        return f"no whole {what} within the deadline"
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    return None


def deadline_in(seconds):
    """A deadline `seconds` from now, on the monotonic clock (what every call here takes)."""
    return time.monotonic() + float(seconds)


def time_left(deadline):
    """Seconds before `deadline`; DeadlineExceeded or Stopped when there are none to use."""
    if STOP.is_set():
        raise Stopped("stopping")
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("deadline passed")
    return left


def request(method, url, deadline, session=None, max_bytes=None, read_timeout=None, **kwargs):
    """A requests.Response whose whole body arrived before `deadline` (monotonic seconds).

    `read_timeout` still bounds each wait for the server (a silent host is given up on
    before the deadline when it is shorter). Raises requests exceptions: DeadlineExceeded
    (a Timeout), Stopped, TooLarge, or what requests itself raises.
    """
    left = time_left(deadline)
    wait = min(left, read_timeout) if read_timeout else left
    getter = session or requests
    response = getter.request(method, url, stream=True, timeout=(min(wait, 10.0), wait), **kwargs)
    try:
        declared = response.headers.get("Content-Length", "")
        if max_bytes and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"too large ({int(declared)} bytes)")
        body = bytearray()
        while True:
            left = time_left(deadline)
            sock = getattr(response.raw.connection, "sock", None)
            if sock is not None:
                sock.settimeout(min(left, read_timeout) if read_timeout else left)
            try:
                piece = response.raw.read1(PIECE, decode_content=True)
            except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                if time.monotonic() >= deadline:
                    raise DeadlineExceeded("deadline passed") from None
                raise requests.ReadTimeout(f"no data for {read_timeout:g}s") from None
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise requests.ConnectionError(f"reading the body failed ({type(e).__name__})") from None
            if not piece:
                break
            body += piece
            if max_bytes and len(body) > max_bytes:
                raise TooLarge(f"too large (over {max_bytes} bytes)")
    except BaseException:
        response.close()
        raise
    response._content = bytes(body)  # what requests' own .content would hold; .json()/.text read it
    response.close()
    return response


def get(url, deadline, **kwargs):
    return request("GET", url, deadline, **kwargs)


def post(url, deadline, **kwargs):
    return request("POST", url, deadline, **kwargs)
