# orderflow: `make run` starts the local system, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run services test lint unit package bench clean

$(STAMP): requirements.txt chalice_app/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## the whole system on http://127.0.0.1:$(PORT)
	$(PY) -m processor local --port $(PORT)

services: $(STAMP)  ## only PostgreSQL + moto, for `cd chalice_app && chalice local`
	$(PY) -m processor local --services-only

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) lint
	$(PY) -m pytest

package: $(STAMP)  ## Lambda deployment zip + SAM template in build/package
	$(PY) -m processor.package build/package

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf build .pytest_cache .ruff_cache
