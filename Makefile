# Two commands for a new user: `make demo` and `make test`.  Both create the
# virtual environment in .venv when it is missing and reinstall the project
# when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo web test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The sample has invalid rows on purpose, so the run exits 1 ("look at the results"): the demo
# succeeds on 0 or 1 and fails on anything else.  The run's own summary names the results sheet.
demo: $(STAMP)
	BATCH_PAYOUTS_LEDGER=$${BATCH_PAYOUTS_LEDGER:-$(CURDIR)/.demo/ledger.sqlite} \
	  $(BIN)/batch-payouts run samples/beneficiaries.xlsx --sandbox --output .demo/beneficiaries.results.xlsx; \
	  test $$? -le 1

# The web app on the built-in sandbox, for trying it in a browser: http://127.0.0.1:8000/
# The emulator cashes about half of each batch's references and expires one in five, two to
# four minutes after they are created, so a batch's page shows them being cashed.
web: $(STAMP)
	BATCH_PAYOUTS_LEDGER=$${BATCH_PAYOUTS_LEDGER:-$(CURDIR)/.demo/ledger.sqlite} \
	  $(BIN)/batch-payouts web --sandbox --data-dir .demo/web \
	  --sandbox-auto-cash 0.5 --sandbox-auto-expire 0.2 --sandbox-auto-after 120

test: $(STAMP)
	bash scripts/ensure-chromium
	bash scripts/ensure-postgresql
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .demo .pytest_cache build *.egg-info
