# `make run` takes a fresh clone to a running platform; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# gbstats, for the statistics agreement test, in a virtualenv of its own (it pins an old pandas).
GBSTATS_VENV := $(VENV)/gbstats
GBSTATS_STAMP := $(GBSTATS_VENV)/.installed-stamp

.PHONY: run test test-calendar lint docs format lock bench reliability clean

# Installs exactly what requirements.lock pins (hashes checked), then the project itself.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock on purpose (after editing pyproject.toml's dependencies, or to upgrade).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --quiet -o requirements.lock

$(GBSTATS_STAMP): tests/experiments/gbstats.lock
	test -x $(GBSTATS_VENV)/bin/python || $(PYTHON) -m venv $(GBSTATS_VENV)
	$(GBSTATS_VENV)/bin/python -m pip install --quiet --require-hashes -r tests/experiments/gbstats.lock
	touch $(GBSTATS_STAMP)

run: $(STAMP)
	$(BIN)/aethercrown serve --demo

# Two workers: much of the suite waits on databases and subprocesses, not the CPU.
test: $(STAMP) $(GBSTATS_STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The suite again (SQLite) with the clock started at the calendar's edges: the first minute of a
# month, mid-month, the last minute of a year and a leap day (see tests/conftest.py).
CALENDAR_INSTANTS ?= 2026-12-01T00:00:00Z 2026-12-15T12:00:00Z 2026-12-31T23:59:00Z 2028-02-29T12:00:00Z
test-calendar: $(STAMP) $(GBSTATS_STAMP)
	@for instant in $(CALENDAR_INSTANTS); do \
		echo "== the suite at $$instant"; \
		env -u AETHERCROWN_TEST_DATABASE_URL AETHERCROWN_TEST_NOW=$$instant \
			$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS) || exit 1; \
	done

# The reliability suite (benchmarks/reliability): authorization matrix, crash durability,
# concurrent runners and claimers, load, schema fuzzing; one table, non-zero exit on any failure.
# Not part of `make test`. RELIABILITY_ARGS="--budget-seconds 540" for the quick mode,
# "--database-url postgresql://…" (a scratch database: it is wiped) for PostgreSQL too.
RELIABILITY_ARGS ?=
reliability: $(STAMP)
	$(BIN)/python -m benchmarks.reliability $(RELIABILITY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# The documentation site, offline, in strict mode: a broken link or a page missing from the
# navigation fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) .aethercrown site
