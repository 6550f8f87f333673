# Flask Streaming Patterns: build the site, run every gate.
#
#   make html      build the site into _build/html (creates .venv on first use)
#   make test      every gate: -W -n build, lint, Sybil examples, tests, coverage
#
# Any other target is passed to sphinx-build -M (sphinx-quickstart style).

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed-from-lock
TEST_STAMP  := $(VENV)/.installed-from-test-lock
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps --no-compile
# Both locks install with uv, which pip installs first from the site lock's own
# hashed pin; where uv fails (no wheel for the platform, no index it can
# reach: it reads PyPI and UV_* settings, not pip.conf), pip installs the lock.
UV_PIN      := $(VENV)/uv-pin.txt
LOCK_INSTALL = install_lock() { $(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes --no-deps --link-mode copy -r "$$1" \
	  || { echo "uv could not install $$1: pip installs it"; $(PIP_INSTALL) -r "$$1"; }; }; install_lock
SPHINXOPTS  ?=
SPHINXBUILD ?= $(BIN)/sphinx-build
SOURCEDIR   := docs
BUILDDIR    := _build
PORT        ?= 8000
LIVEOPTS    ?=
PYTEST_ARGS ?=
# pytest-xdist workers for make test (0: one process). Most live tests wait on a
# socket or a timeout, so more workers than the 2 cores pay off.
PYTEST_WORKERS ?= 4
LINT_PATHS  := snippets tests bench conf.py conftest.py docs/_intersphinx docs/_ext
# The folders of docs/ the build writes (docs/_ext/generated.py says which).
GENERATED   := $(shell sed -n 's/^GENERATED = (\(.*\))/\1/p' docs/_ext/generated.py | tr -d '",')

.PHONY: help venv system screenshots html livehtml test check doctest lint format bench inventories lock clean Makefile

help: $(STAMP)
	@$(SPHINXBUILD) -M help "$(SOURCEDIR)" "$(BUILDDIR)" -c . $(SPHINXOPTS) $(O)
	@echo
	@echo "Project targets:"
	@echo "  html         build the site with -W -n (zero warnings, zero broken references)"
	@echo "  livehtml     serve the site on PORT=$(PORT), rebuilding when docs/, snippets/ or conf.py change"
	@echo "  test         every gate: the -W build, lint, Sybil examples, tests, 100% coverage"
	@echo "  check        the inner loop: the build, lint, every example and in-process test (no servers)"
	@echo "  doctest      only the examples on the pages and in snippet docstrings (Sybil)"
	@echo "  lint         ruff check, ruff format --check, sphinx-lint"
	@echo "  bench        run the benchmarks and refresh the Performance page's data"
	@echo "  screenshots  retake the demo pages' screenshots (needs chromium)"
	@echo "  inventories  rebuild docs/_intersphinx/*.inv (needs python3.11-doc)"
	@echo "  lock         recompile tests/requirements.txt and requirements-docs.txt from their .in files"
	@echo "  clean        remove _build and caches (keeps .venv)"

# The virtual environment: created on first use, refreshed when a lock
# changes, so a machine with Python 3.11+ and make needs nothing else. Two
# hashed locks: requirements-docs.txt is what the site's build needs (48
# packages: make html, livehtml); tests/requirements.txt adds the examples'
# libraries, the gates, the live tiers' servers and the bench (make test,
# doctest, lint, bench). Keeping those out of the build's path took the first
# make html on a fresh clone from 77 s to 39 s; uv instead of pip took the
# installs from 13 s and 32 s to about 1 s each (measured on these machines,
# empty caches). compileall -j 0 compiles on every core.
venv: $(STAMP)
$(STAMP): requirements-docs.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/ {keep = 1; print; next} keep && /^ +--hash=/ {print; next} {keep = 0}' requirements-docs.txt > $(UV_PIN)
	@$(PIP_INSTALL) -r $(UV_PIN) || echo "pip could not install uv: pip installs the locks"
	@$(LOCK_INSTALL) requirements-docs.txt
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null
	@touch $@

# The locks are sources: an empty rule stops the catch-all at the end from
# passing them to sphinx-build as targets.
requirements-docs.txt tests/requirements.txt: ;

$(TEST_STAMP): tests/requirements.txt $(STAMP)
	@$(LOCK_INSTALL) tests/requirements.txt
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null
	@touch $@

# Pyodide (npm) and the wheels (PyPI, the lock's hashes) that the Run button
# installs, fetched once into docs/_tryit/cache/ (docs/_ext/vendor_pyodide.py);
# a warm build finds them there.
TRYIT_CACHE := docs/_tryit/cache/.filled
docs/_ext/vendor_pyodide.py: ;
$(TRYIT_CACHE): tests/requirements.txt docs/_ext/vendor_pyodide.py | $(STAMP)
	$(BIN)/python docs/_ext/vendor_pyodide.py >/dev/null
	@touch $@

html: $(STAMP) $(TRYIT_CACHE)
	$(SPHINXBUILD) -M html "$(SOURCEDIR)" "$(BUILDDIR)" -c . -W -n --keep-going $(SPHINXOPTS) $(O)

livehtml: $(STAMP)
	$(BIN)/sphinx-autobuild "$(SOURCEDIR)" "$(BUILDDIR)/html" -c . -n --port $(PORT) \
		--watch snippets --watch tests --watch conf.py $(foreach g,$(GENERATED),--ignore "*/docs/$(g)/*") --ignore "*/docs/_tryit/*" --ignore "*/__pycache__/*" --ignore "*.pyc" \
		$(LIVEOPTS) $(SPHINXOPTS) $(O)

# The system binaries of the live and browser tiers, where they install without
# a prompt (Debian/Ubuntu as root or with password-free sudo); elsewhere those
# tiers skip with a reason and the run says how to enable them.
system:
	@bash .ci/system-packages

# Coverage settings for this machine: 100% of snippets/, less only the snippets
# that a missing tier alone reaches (none under FSP_STRICT=1): tests/tiers.py.
COVERAGERC := $(BUILDDIR)/coveragerc

# FSP_SHARD=i/N (CI's parallel jobs) runs one shard and leaves the 100% gate
# to the job that combines the shards' data (.ci/coverage).
# PYTHONDONTWRITEBYTECODE (set on some machines, these among them) would make
# every worker and server compile and assert-rewrite the project's modules
# again: make test lets Python keep them in __pycache__ (git ignores it).
# The site's build and the full lock's install need nothing of each other:
# on a fresh clone they run side by side, on the two cores (the install and
# its compileall take 8 s, the build 11 s); afterwards both are up to date and
# take no time.
test: system
	@$(MAKE) --no-print-directory --output-sync=target -j 2 html $(TEST_STAMP)
	@$(MAKE) --no-print-directory lint
	@$(BIN)/python -m tests.tiers coveragerc $(COVERAGERC)
	env -u PYTHONDONTWRITEBYTECODE FSP_RECORD_DURATIONS=$(if $(FSP_SHARD),0,1) $(BIN)/python -m pytest --cov-config=$(COVERAGERC) \
		-n $(PYTEST_WORKERS) --dist loadscope $(if $(FSP_SHARD),--cov-fail-under=0) $(PYTEST_ARGS)

# The inner loop, between make doctest and make test: the -W build, lint,
# every example and every test that needs no server, proxy, store, worker or
# browser (the *_live.py and *_browser.py modules are left out), less the
# tests marked slow, without coverage.
CHECK_WORKERS ?= 2
check: $(TEST_STAMP)
	@$(MAKE) --no-print-directory --output-sync=target -j 2 html lint
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest --no-cov -n $(CHECK_WORKERS) --dist loadscope \
		--ignore-glob='*_live.py' --ignore-glob='*_browser.py' -m 'not slow' $(PYTEST_ARGS)

doctest: $(TEST_STAMP)
	$(BIN)/python -m pytest docs snippets --no-cov $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/sphinx-lint $(foreach g,$(GENERATED),--ignore docs/$(g)) docs README.md

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# The demo pages' screenshots on the SSE, tokens and MJPEG pages (Chromium;
# fonts-noto-cjk and fonts-noto-color-emoji draw the answer's CJK and emoji).
screenshots: $(TEST_STAMP) system
	$(BIN)/python -m tests.demo_screenshots docs/_static/demos

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

inventories: $(STAMP)
	$(BIN)/python docs/_intersphinx/build_inventories.py

# The full lock first; the site's lock is constrained by it, so every package
# the two share has the same pin (uv keeps existing pins unless told --upgrade).
lock: $(STAMP)
	$(BIN)/uv pip compile --generate-hashes --python-version 3.11 tests/requirements.in -o tests/requirements.txt
	$(BIN)/uv pip compile --generate-hashes --python-version 3.11 requirements-docs.in -c tests/requirements.txt -o requirements-docs.txt

clean:
	rm -rf "$(BUILDDIR)" .pytest_cache .ruff_cache .coverage .coverage.*
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

# Everything else goes to Sphinx: make dirhtml, make linkcheck, ...
%: $(STAMP)
	@$(SPHINXBUILD) -M $@ "$(SOURCEDIR)" "$(BUILDDIR)" -c . $(SPHINXOPTS) $(O)
