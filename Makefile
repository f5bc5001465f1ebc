# The two commands of the README:
#   make demo   run the bot on its embedded IMAP/SMTP servers with sample inquiries
#   make test   run the whole test suite against real servers on loopback
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test servers lint typecheck contract clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

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
