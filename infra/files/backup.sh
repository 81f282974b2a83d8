#!/bin/sh
# Verified online backup of milesahead's SQLite database (run by cron as milesahead).
#
#   backup.sh [KIND]      KIND: daily (default, also feeds weekly) | pre-deploy | manual
#
# The copy uses SQLite's backup API, so it is consistent while the site is writing
# (WAL mode); it is checked with PRAGMA integrity_check, compressed, and renamed into
# place only when complete. Old copies are rotated. Any failure exits non-zero and
# leaves a line in the journal (tag milesahead-backup).
#
# Where the database is, where the copies go and how many are kept come from the app's
# config (database.path, backup.dir, backup.keep_daily, backup.keep_weekly), read by the
# running release's own config loader: setup renders that file from group data, so
# nothing else holds these settings. RELEASE (default <app_root>/current) is the release
# whose loader reads it: a deploy's pre-deploy snapshot names the release it is about to
# migrate with, as a fresh host has no current release yet while its database (restored
# from the replica) is already there. KEEP_OTHER (default 5) is how many pre-deploy and
# manual copies are kept.
#
# The daily and manual runs also verify the Litestream replica when replication is
# set up (bin/replica.py verify: restore its latest copy to a temp file,
# integrity_check, row counts): a broken or stale replica (REPLICA_MAX_LAG_MINUTES,
# default 15) fails the run after the local copy is safely in place.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)  # this script lives in <app_root>/bin
CONFIG=${MILESAHEAD_CONFIG:-$ROOT/config.yaml}
RELEASE=${RELEASE:-$ROOT/current}
KEEP_OTHER=${KEEP_OTHER:-5}
KIND=${1:-daily}

say() {
    echo "backup: $*" >&2
    logger -t milesahead-backup -- "$*" 2>/dev/null || true
}
trap 'status=$?; [ $status -eq 0 ] || say "FAILED ($KIND, exit $status)"' EXIT

settings=$(cd / && PYTHONPATH="$RELEASE/vendor:$RELEASE" python3 - "$CONFIG" <<'PY'
import shlex, sys
import config
c = config.load_config(sys.argv[1])
for name, value in (("DB", c["database"]["path"]), ("DIR", c["backup"]["dir"]),
                    ("KEEP_DAILY", c["backup"]["keep_daily"]), ("KEEP_WEEKLY", c["backup"]["keep_weekly"])):
    print(f"{name}={shlex.quote(str(value))}")
PY
) || { say "cannot read $CONFIG (is a release deployed?)"; exit 1; }
eval "$settings"

[ -f "$DB" ] || { say "no database at $DB"; exit 1; }
mkdir -p "$DIR/$KIND"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$DIR/$KIND/milesahead-$stamp.db.gz"
tmp="$DIR/$KIND/.milesahead-$stamp.db.tmp"

# Backup API copy, then integrity check of the copy; python3's stdlib has sqlite3.
python3 - "$DB" "$tmp" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
src.close()
result = dst.execute("PRAGMA integrity_check").fetchone()[0]
dst.close()
if result != "ok":
    sys.exit(f"integrity_check of the copy: {result}")
PY
gzip -n -c "$tmp" >"$tmp.gz"
rm -f "$tmp"
mv "$tmp.gz" "$final"

# A daily copy also becomes the weekly one when the newest weekly is a week old.
if [ "$KIND" = daily ]; then
    mkdir -p "$DIR/weekly"
    if [ -z "$(find "$DIR/weekly" -name 'milesahead-*.db.gz' -mtime -7)" ]; then
        ln "$final" "$DIR/weekly/" 2>/dev/null || cp "$final" "$DIR/weekly/"
    fi
fi

# Rotation: keep the newest N of each kind (names sort by time).
rotate() {
    ls -1 "$DIR/$1" 2>/dev/null | grep '^milesahead-.*\.db\.gz$' | sort -r |
        tail -n +"$(($2 + 1))" | while read -r old; do rm -f "$DIR/$1/$old"; done
}
case $KIND in
    daily) rotate daily "$KEEP_DAILY"; rotate weekly "$KEEP_WEEKLY" ;;
    *) rotate "$KIND" "$KEEP_OTHER" ;;
esac

say "ok $final ($(stat -c %s "$final") bytes)"

case $KIND in
    daily | manual)
        # setup installs the checker beside this script; a copy run from elsewhere
        # (a checkout, a test) without it has no replica to check.
        if [ ! -f "$ROOT/bin/replica.py" ]; then
            say "replica check skipped: no $ROOT/bin/replica.py"
        elif ! MILESAHEAD_ROOT="$ROOT" MILESAHEAD_DB="$DB" python3 "$ROOT/bin/replica.py" verify >&2; then
            say "replica check FAILED (the local copy $final is fine)"
            echo "$final"
            exit 3
        fi
        ;;
esac
echo "$final"
