# milesahead: `make run` serves the site locally, `make test` runs every test (what CI runs),
# `make check` is the everyday loop (lint and the fast tests, about two minutes).
# All build the virtualenv first, from pinned requirements, with the machine's python3.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080

.PHONY: run test check lint format venv system-deps clean sandbox sandbox-down

run: venv
	$(PY) app.py migrate
	$(PY) app.py seed-cards
	$(PY) app.py serve --port $(PORT)

# The toolkit's whole job on this machine: a throw-away VM shaped like the production host,
# set up and deployed, its URL printed (docs/toolkit.md: The sandbox). As root; QEMU from system-deps.
sandbox: venv
	$(PY) -m infra sandbox up

sandbox-down: venv
	$(PY) -m infra sandbox down

# A bare `pytest` leaves the VM and browser lanes out (tests/conftest.py); this -m selects
# every lane, so CI runs them all.
EVERY_LANE := -m "vm or browser or not (vm or browser)"

test: venv system-deps lint
	$(PY) -m pytest $(EVERY_LANE)

check: venv lint
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-tools.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Debian packages the test lanes need (QEMU for the VM lane, Chromium for screenshots).
system-deps:
	sh scripts/system-deps.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build artifacts

# toolkit: the operator's commands (docs/toolkit.md). Hosts and secrets come from the
# environment (OCI_HOST, OCI_USER, OCI_SSH_KEY or OCI_SSH_KEY_PATH, ...). DATA="KEY=VALUE ..."
# passes --data to any of them; `make deploy ARCHIVE=...` ships an archive built before.
.PHONY: setup deploy rollback status logs backup fetch-backup restore restore-replica

INFRA = $(PY) -m infra $(foreach item,$(DATA),--data $(item))

setup status logs backup: venv
	$(INFRA) $@

deploy: venv
	$(INFRA) deploy $(if $(ARCHIVE),--archive $(ARCHIVE))

fetch-backup: venv
	$(INFRA) fetch-backup $(NAME)

rollback: venv
	$(INFRA) rollback $(ID)

restore: venv
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backup.db.gz"; exit 2; }
	$(INFRA) restore $(FILE)

restore-replica: venv
	$(INFRA) restore --from-replica $(if $(AT),--at $(AT))
