"""Restore the database from `--data restore_file=PATH` (local file or host path)."""

from pyinfra import host

from infra.tasks.release import restore

restore(backup=host.data.restore_file)
