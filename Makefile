# gridplan — every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
WORKSPACE ?= demo
SCALE  ?= small

.PHONY: install demo test bench lint clean vendor-assets

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
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

# Maintainers only: re-vendor the Leaflet files after changing the pins in gridplan/maps/assets/package.json
# (users and CI never need npm; the vendored files and their checksums are committed).
vendor-assets: $(STAMP)
	npm install --prefix gridplan/maps/assets --ignore-scripts --no-audit --no-fund --loglevel=error
	$(PY) -m gridplan.maps.assets_vendor gridplan/maps/assets/node_modules

clean:
	rm -rf $(VENV) demo build dist .pytest_cache .mypy_cache .ruff_cache
