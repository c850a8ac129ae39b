# Two commands on a fresh machine with Python 3.11:
#   make demo   # venv + synthetic data + the four phases (tiny) + retrieval and
#               # interpretability evaluation + a captioner fine-tuned and scored
#   make test   # venv + the test suite
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python
SYNTHETIC := data/synthetic
DEMO := runs/demo
DEMO_MOTIONS ?= 1000
# Test processes: each trains the shared fixtures once; two keep a 2-core machine busy.
TEST_WORKERS ?= 2
MAIN := $(PYTHON) -m lexmo_jax.main

.PHONY: venv data demo generation reproduce test bench clean-demo

$(VENV)/.installed: requirements.txt requirements-nodeps.txt requirements-test.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PYTHON) -m pip install --quiet -r requirements-test.txt
	# The project itself, editable: `import lexmo_jax` from any folder, no PYTHONPATH.
	$(PYTHON) -m pip install --quiet setuptools==84.2.1 wheel==0.48.0
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

$(SYNTHETIC)/actions.json: | $(VENV)/.installed
	$(PYTHON) -m input_pipeline.synthetic --out $(SYNTHETIC) --num-motions $(DEMO_MOTIONS) --seed 0

data: $(SYNTHETIC)/actions.json

demo: venv data
	$(MAIN) --config=configs/lexmlm.py:runlocal --workdir=$(DEMO)/lexmlm
	$(MAIN) --config=configs/cmmm.py:runlocal --workdir=$(DEMO)/cmmm \
	  --config.init_from=$(DEMO)/lexmlm
	$(MAIN) --config=configs/lexmmm.py:runlocal --workdir=$(DEMO)/lexmmm \
	  --config.init_from=$(DEMO)/cmmm
	$(MAIN) --config=configs/lexcmlp.py:runlocal --workdir=$(DEMO)/lexcmlp \
	  --config.init_from=$(DEMO)/lexmmm
	$(PYTHON) -m lexmo_jax.evaluate --workdir=$(DEMO)/lexcmlp --out=$(DEMO)/eval/retrieval.json
	$(PYTHON) -m lexmo_jax.evaluate --workdir=$(DEMO)/lexcmlp --task=interpretability \
	  --out=$(DEMO)/eval/interpretability.json
	$(MAIN) --config=configs/captioning.py:runlocal --workdir=$(DEMO)/captioning \
	  --config.init_from=$(DEMO)/lexcmlp
	$(PYTHON) -m lexmo_jax.evaluate --workdir=$(DEMO)/captioning --task=captioning \
	  --out=$(DEMO)/eval/captioning.json

# The paper's Table 4 on the demo: a 512-d projection of the demo's text encoder, a motion
# VQ-VAE, T2M's evaluator and two generators (MiniLM vs the lexical text encoder), scored.
generation: venv data
	$(PYTHON) bench/bench_generation.py --pretrained=$(DEMO)/lexcmlp --out=$(DEMO)/generation

# The paper's Table 1 on the synthetic data at the tiny scale: TMR, MotionPatches, their
# lexical variants and the four-phase method, each trained and evaluated (timed per row).
reproduce: venv data
	$(PYTHON) -m lexmo_jax.reproduce --table=retrieval --data=$(SYNTHETIC) --out=runs/reproduce

test: venv
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

bench: venv data
	$(PYTHON) bench/bench_train_step.py
	$(PYTHON) bench/bench_input_pipeline.py --data $(SYNTHETIC)

clean-demo:
	rm -rf $(DEMO)
