"""The toolkit's tasks: importable pyinfra @deploy functions, one concern per module."""

from pathlib import Path

INFRA = Path(__file__).resolve().parent.parent
TEMPLATES = INFRA / "templates"
FILES = INFRA / "files"
