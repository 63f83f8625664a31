# Two commands do everything on a fresh machine:
#   make demo   set up, then run the main job (Table I for the headline methods on Fashion-MNIST)
#   make test   set up, then run the test suite
# and, once set up:
#   make table1       every method of Table I on Fashion-MNIST
#   make efficiency   Table II: search time and memory at up to 1,000,000 codes
#   make paper        Table I and II beside the paper's for every dataset here (runs only what is missing)
#   make report       rebuild every table, plot and the results site (results/site/) from the stored records
#   make screenshots  rebuild the site and retake the README's pictures of it (docs/site-*.png) in headless Chromium
PYTHON ?= python3
VENV ?= .venv
# the PyTorch build this project is tested with; override on machines that have another
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_METHODS ?= hdhash,hashnet
# 'paper' = every registered method marked paper_table1 (methods/*.py)
TABLE1_METHODS ?= paper
DEMO_BITS ?= 32
# the demo's runs side by side (150 epochs each under Fashion-MNIST's training-budget rule)
DEMO_WORKERS ?= 2
TABLE1_BITS ?= 16,32,48,64
# the thread count the stored rows were trained with: a deep model's weights depend on it (about
# 0.01 MAP), so one thread makes a rerun land on the stored figures
THREADS ?= 1
STAMP := $(VENV)/.installed

.PHONY: demo test data browser setup report site screenshots table1 efficiency paper

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(TORCH_SPEC) || $(VENV)/bin/python -m pip install -q torch torchvision
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP)

data:
	@scripts/ensure-fashion-mnist.sh

# headless Chromium for the results site's browser test (tests/test_site.py)
browser:
	@scripts/ensure-chromium.sh

demo: $(STAMP) data
	$(VENV)/bin/python -m protocols.map --dataset fashion-mnist --methods $(DEMO_METHODS) --bits $(DEMO_BITS) --workers $(DEMO_WORKERS) --threads $(THREADS) --force

test: $(STAMP) data browser
	$(VENV)/bin/ruff check .
	HASHBENCH_REQUIRE_BROWSER=1 $(VENV)/bin/python -m pytest

table1: $(STAMP) data
	$(VENV)/bin/python -m protocols.map --dataset fashion-mnist --methods $(TABLE1_METHODS) --bits $(TABLE1_BITS) --threads $(THREADS)

efficiency: $(STAMP) data
	$(VENV)/bin/python -m protocols.efficiency --dataset fashion-mnist

paper: $(STAMP) data
	$(VENV)/bin/python -m protocols.paper --threads $(THREADS)

report: $(STAMP) data
	$(VENV)/bin/python -m protocols.report

# only the results site (results/site/index.html); make report rebuilds it with everything else
site: $(STAMP)
	$(VENV)/bin/python -m protocols.site

# the README's pictures of the site (docs/site-*.png), from the site as rebuilt (protocols/site_shots.py)
screenshots: $(STAMP) browser
	$(VENV)/bin/python -m protocols.site --screenshots docs
