# Each target creates the virtual environment it needs, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-api demo-issues demo-signup test browser bench bench-quick mutants typecheck clean migration

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tidings demo

# The lending example as a FastAPI app on AsyncSession, driven in-process by httpx; prints the mailboxes.
demo-api: $(STAMP)
	$(BIN)/python -m examples.fastapi.demo

demo-issues: $(STAMP)
	$(BIN)/python -m examples.issues.demo

demo-signup: $(STAMP)
	$(BIN)/python -m examples.signup.demo

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The console's browser tests drive Debian's chromium through Playwright (no browser is downloaded):
# installed here when missing and running as root; elsewhere those tests skip, saying why (CI=true fails them).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }; } || \
	  echo "note: chromium is not installed (apt-get install chromium, as root): the console's browser tests will skip"

# Prints every figure and keeps the output in bench/results/, named by the commit it measured.
bench: $(STAMP)
	mkdir -p bench/results
	$(BIN)/python -m bench | tee bench/results/bench-$$(git rev-parse --short HEAD).md

# The figures a change to the hot path moves, fewer rounds: under 3 minutes.
bench-quick: $(STAMP)
	mkdir -p bench/results
	BENCH_QUICK=1 $(BIN)/python -m bench | tee bench/results/bench-quick-$$(git rev-parse --short HEAD).md

# Mutation testing of the guarantee modules (about 40 minutes on 2 CPUs; see docs/guarantees.md).
# Resumes an interrupted run; MUTANTS_ARGS=--fresh starts again.
mutants: $(STAMP)
	$(BIN)/python -c "import cosmic_ray" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[test,mutants]"
	$(BIN)/python -m tests.mutants $(MUTANTS_ARGS)

typecheck: $(STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mutants

# Tidings' next Alembic revision from the models (docs/operations.md, "Schema changes").
migration: $(STAMP)
	$(BIN)/python -m tests.alembic_app.new "$(MESSAGE)"
