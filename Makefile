# gridplan — every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml gridplan/maps/assets/package-lock.json | cksum | cut -d' ' -f1)
WORKSPACE ?= demo
SCALE  ?= small

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml gridplan/maps/assets/package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[service,dask,dev]'
	# Leaflet and its plugins for offline maps, pinned by package-lock.json (inlined into each map)
	npm ci --prefix gridplan/maps/assets --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(VENV)/bin/gridplan demo --workspace $(WORKSPACE) --scale $(SCALE)

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check gridplan tests benchmarks
	$(VENV)/bin/mypy gridplan

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
