# The two commands of the README:
#   make demo   run the bot on its embedded IMAP/SMTP servers with sample inquiries
#   make test   run the whole test suite against real servers on loopback
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The test environment CI tested, pinned with hashes (pip-compile of pyproject's [dev] extra).
LOCK := requirements/test.lock
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test servers lint typecheck contract clean bench lock

# What the lock pins, then the project itself without resolving anything more; check_lock.py fails
# (naming the package) when pyproject.toml asks for something the lock lacks: run `make lock`.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r $(LOCK)
	$(PIP) install -q --no-deps -e .
	$(PY) scripts/check_lock.py
	touch $(STAMP)

# Regenerate the lock after changing the dependencies in pyproject.toml (newest versions within the caps).
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q 'pip-tools>=7.4,<8'
	$(VENV)/bin/pip-compile -q --extra dev --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --unsafe-package privacy-mailbox-bot --unsafe-package pip \
		--unsafe-package setuptools --unsafe-package distribute -o $(LOCK) pyproject.toml

demo: $(STAMP)
	$(PY) run_bot.py demo

servers:
	bash scripts/install_test_servers.sh

test: $(STAMP) servers
	$(PY) -m pytest $(PYTEST_ARGS)

# The style rules, the import contract (pyproject's [tool.importlinter]: the rooms and the pure core)
# and strict typing; any of them failing fails `make lint`.
lint: $(STAMP)
	$(VENV)/bin/ruff check bot tests bench scripts
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contract:
	python3 ../shared/contract/check_contract.py

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache

# Benchmark (issue 5): make bench BENCH_ARGS="--drain 10000 --db postgresql"
bench: $(STAMP) servers
	$(PY) -m bench.run $(BENCH_ARGS)
