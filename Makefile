# learning_platform: `make run` starts a ready-to-use platform; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
REQS := requirements/base.txt requirements/ml-common.txt requirements/ml.txt requirements/dev.txt
RUN_ENV := var/run.env

.PHONY: install run test test-fast test-learning lint format bench migrations-check check-gpu-requirements clean

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, from the CPU wheel, so nothing later pulls a CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements/ml.txt -r requirements/dev.txt
	touch $(STAMP)

install: $(STAMP)

$(RUN_ENV):
	mkdir -p var
	printf 'DEBUG=true\nSECRET_KEY=%s\nSUBJECT_HASH_KEY=%s\n' \
	  "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))')" > $(RUN_ENV)
	chmod 600 $(RUN_ENV)

run: $(STAMP) $(RUN_ENV)
	ENV_FILE=$(RUN_ENV) $(PY) manage.py migrate --noinput
	ENV_FILE=$(RUN_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	ENV_FILE=$(RUN_ENV) $(PY) manage.py setup_schedules
	ENV_FILE=$(RUN_ENV) $(PY) manage.py bootstrap
	# the offline base model (pretrained: minutes, once; nothing when BASE_MODEL names a model)
	ENV_FILE=$(RUN_ENV) $(PY) manage.py build_base_model
	ENV_FILE=$(RUN_ENV) $(PY) manage.py run_platform

# PYTEST_WORKERS processes (pytest-xdist), each with its own test database; a file's tests stay
# together in one process (their live servers, clusters and Redis databases are the file's own).
# Files are handed out in collection order (not the largest first), so the learning test, collected
# first (tests/conftest.py), overlaps the rest of the suite instead of running alone at the end.
# One torch thread per process (training children, serving) unless set: two workers each running
# two-thread OpenMP loops on two cores spin against each other (a training test took 10x as long).
PYTEST_WORKERS ?= 2
test: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} SERVING_TORCH_THREADS=$${SERVING_TORCH_THREADS:-1} \
	  $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# the learning test alone (tests/training/test_learning.py, also in `make test`): builds the pretrained
# base (~6 min on one core the first time, cached under var/test-models) and fine-tunes both bases
test-learning: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -m learning -s

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy interactions/payloads.py curation/scoring.py curation/pii curation/dedup.py curation/balance.py curation/gaps.py abtesting/statistics.py abtesting/arena.py abtesting/scorers.py training/recipes.py registry/routing.py learning_platform/dashboard/charts.py learning_platform/dashboard/series.py

# pip's resolver over what a CUDA host installs (requirements/gpu.txt + dev.txt), as a dry run:
# nothing is installed, only metadata and a few wheels are fetched (see requirements/gpu-check.txt)
check-gpu-requirements: $(STAMP)
	$(PIP) install --dry-run --ignore-installed --quiet -c requirements/gpu-check.txt \
	  -r requirements/gpu.txt -r requirements/dev.txt
	@echo "requirements/gpu.txt resolves (with dev.txt, torch 2.13.0)"

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
