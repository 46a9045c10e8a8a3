# The two commands: `make demo` (embedded default, no services) and `make test` (real PostgreSQL + Redis).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USER ?= organizer
DEMO_PASSWORD ?= demo-organizer-2026
DEMO_ATTENDEE ?= att-0001
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/matchmaking
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: install demo test lint check typecheck prod load clean screenshots messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs the lock (every package, transitive ones included, pinned with its hashes); `make lock`
# rewrites the locks after a change to requirements*.txt.
$(VENV)/.installed: requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.lock
	touch $@

LOCK = $(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

lock: | $(BIN)/python
	$(BIN)/pip install -q pip-tools==7.7.0
	$(LOCK) -o requirements.lock requirements.txt
	$(LOCK) -o requirements-dev.lock requirements-dev.txt

install: $(VENV)/.installed

demo: install
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py dashboard_demo --event demo
	$(BIN)/python manage.py create_organizer --organization demo-org --username $(DEMO_USER) --password $(DEMO_PASSWORD)
	@echo ""
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/   (login: $(DEMO_USER) / $(DEMO_PASSWORD))"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/docs/"
	@echo "  Home:      http://$(HOST):$(PORT)/"
	@printf "  Attendee:  " && $(BIN)/python manage.py attendee_login_link --event demo --attendee $(DEMO_ATTENDEE) --base-url http://$(HOST):$(PORT)
	@echo "             (then open a room: people walking in show up in your people-to-meet widget)"
	@echo ""
	$(BIN)/python manage.py simulate_traffic --event demo --server http://$(HOST):$(PORT) --focus $(DEMO_ATTENDEE) & SIM=$$!; \
	trap 'kill $$SIM 2>/dev/null' EXIT INT TERM; \
	$(BIN)/daphne -b $(HOST) -p $(PORT) matchmaking_site.asgi:application

# The pages as people see them (docs/screenshots/, shown in the README): the demo on a throwaway
# database, one daphne, the system Chromium.
screenshots: install
	$(BIN)/python docs/screenshots.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python manage.py check
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python manage.py makemigrations --check --dry-run

# mypy with the Django and DRF plugins over the product packages (files and options: pyproject.toml).
typecheck: install
	$(BIN)/mypy

test: lint check typecheck
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

# A production-like run on this machine: two uvicorn workers, two Celery workers and beat (Procfile),
# against PostgreSQL and Redis. Needs DATABASE_URL, REDIS_URL, SECRET_KEY and ALLOWED_HOSTS set.
prod: install
	DEBUG=false $(BIN)/python manage.py migrate --noinput
	DEBUG=false $(BIN)/python manage.py collectstatic --noinput -v 0
	DEBUG=false DATABASE_POOL=$${DATABASE_POOL:-true} PATH=$(abspath $(BIN)):$$PATH $(BIN)/honcho start -f Procfile

# Load: the production-like run driven by hey and wrk (Debian packages); prints req/s, p50, p99, errors.
LOAD_SECONDS ?= 30
load: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/load.py --seconds $(LOAD_SECONDS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

# Translations (locale/<lang>/LC_MESSAGES): `make messages` collects the marked strings into the .po
# files (GNU gettext's xgettext and msgmerge), then compiles the .mo files that are committed.
MESSAGES_IGNORE = --ignore=.venv --ignore=tests --ignore=benchmarks --ignore=docs --ignore=deploy --ignore=staticfiles --ignore=data
messages: install
	$(BIN)/python manage.py makemessages -l fr --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py makemessages -d djangojs -l fr --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l fr --ignore=.venv
