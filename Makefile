# Two commands matter on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test install install-test system-deps lint bench deb clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

# Install, then the technician's one-shot check on the embedded defaults.
run: install
	@$(BIN)/netprobe diagnose; rc=$$?; echo "(netprobe diagnose exited $$rc: 0 healthy, 1 degraded, 2 down)"

system-deps:
	@bash tools/install-system-deps

install-test: $(BIN)/python system-deps
	$(BIN)/pip install -q -e '.[test]'

lint: install-test
	$(BIN)/ruff check agent
	$(BIN)/ruff format --check agent
	$(BIN)/mypy

# Lint, then the whole suite. pytest's exit 5 (no tests collected) is not a pass.
test: lint
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

bench: install-test
	$(BIN)/python -m pytest tests/bench -s -p no:cacheprovider -o python_files='bench_*.py'

deb:
	bash packaging/build-deb

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The offline bundle of one architecture (docs/install.md): the agent and every Debian .deb a
# minimal bookworm lacks for it, with install.sh -> dist/netprobe-bundle_<version>_<arch>.tar.gz
.PHONY: bundle repo
ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo arm64)
bundle:
	bash packaging/build-bundle -a $(ARCH)

# The regency's signed apt repository from the .debs in dist/ -> dist/apt-repo:
# make repo KEY=<gpg key id> URL=<where the nodes fetch it> [GNUPGHOME=...]
repo:
	@test -n "$(KEY)" -a -n "$(URL)" || { echo "usage: make repo KEY=<key id> URL=<repository URL>"; exit 64; }
	bash packaging/apt-repo/build-repo -k "$(KEY)" -u "$(URL)" $(if $(GNUPGHOME),-g "$(GNUPGHOME)")
