# Two commands from a fresh clone: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
TS := clients/typescript
# The TypeScript client's toolchain (ts-proto, tsc) and dependencies, exactly as its lockfile says.
NPM_STAMP := $(TS)/node_modules/.installed-stamp
# The web console's front end (Preact, htm, esbuild from its lockfile); its build is committed.
CONSOLE := src/audiences_server/http/console/web
CONSOLE_NPM_STAMP := $(CONSOLE)/node_modules/.installed-stamp
# Debian's Chromium, which the console's browser tests drive (installed with apt-get, as root on CI).
CHROMIUM := /usr/bin/chromium

.PHONY: run test fuzz test-ts gen gen-check console console-check lint fmt bench bench-quick bench-ingest bench-evaluator demo clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/audiences-server serve

test: $(STAMP) $(CHROMIUM) gen-check console-check lint
	$(PY) -m pytest -q --durations=15
	$(MAKE) test-ts

# The property tests again, drawing new examples on each run (`make test` draws the same ones
# every time, so that a commit that passed passes again). Whatever this finds becomes a plain test.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q $(FUZZ_ARGS) $$(grep -rl --include='test_*.py' '^from hypothesis' tests)

# The TypeScript client's tests (compiled by tsc, run by Node's test runner) against a real server.
test-ts: $(STAMP) $(NPM_STAMP)
	cd $(TS) && npm test --silent

$(NPM_STAMP): $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# The cluster's tests (docs/scaling.md) against a real NATS JetStream: Debian's nats-server is
# installed when missing (as root, as CI runs); each test starts its own on a free port and a
# temporary directory. `make test` runs the in-process ones and skips these without nats-server.
test-cluster: $(STAMP)
	@PATH="$$PATH:/usr/sbin" command -v nats-server >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server)
	PATH="$$PATH:/usr/sbin" $(PY) -m pytest -q tests/cluster

# A cluster on this machine: nats-server, the identity stage and CLUSTER_SHARDS shard processes running
# CLUSTER_PARTITIONS partitions under var/cluster, until Ctrl-C; `audiences-server cluster send` appends
# calls to it (docs/scaling.md).
CLUSTER_SHARDS ?= 2
CLUSTER_PARTITIONS ?= 4
cluster: $(STAMP)
	PATH="$$PATH:/usr/sbin" $(VENV)/bin/audiences-server cluster local --shards $(CLUSTER_SHARDS) \
		--partitions $(CLUSTER_PARTITIONS)

gen: $(STAMP) $(NPM_STAMP)
	$(PY) scripts/gen_protos.py

gen-check: $(STAMP) $(NPM_STAMP)
	$(PY) scripts/gen_protos.py --check

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

$(CONSOLE_NPM_STAMP): $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	cd $(CONSOLE) && npm ci --no-audit --no-fund --loglevel=error
	touch $(CONSOLE_NPM_STAMP)

# Builds the console's bundle into its static/ folder (commit the result); console-check fails
# when the committed bundle is not what the sources build.
console: $(CONSOLE_NPM_STAMP)
	cd $(CONSOLE) && node build.mjs

console-check: $(CONSOLE_NPM_STAMP)
	cd $(CONSOLE) && node build.mjs --check

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(PY) -m mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench scripts

# The benchmarks also need the `bench` extras (DuckDB, for baselines); `make test` does not.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The whole suite (bench/suite.py): every figure of BENCHMARKS.md against its baseline and target,
# written to bench/results/latest.json. `bench` is the full scale (100k users / 1M events; about 8
# minutes today, plus the 200 definitions of bench/space.py in the evaluator stage and about 10 in
# the live_d200 stage), `bench-quick` small scales in about 3 minutes; `BENCH_ARGS="--only ingest"`
# picks stages.
bench: $(BENCH_STAMP)
	$(PY) bench/suite.py $(BENCH_ARGS)

bench-quick: $(BENCH_STAMP)
	$(PY) bench/suite.py --quick $(BENCH_ARGS)

bench-ingest: $(BENCH_STAMP)
	$(PY) bench/ingest.py $(BENCH_ARGS)

# Evaluator benchmark at full scale (slow); `make bench-evaluator BENCH_ARGS=--quick` for the preset.
bench-evaluator: $(BENCH_STAMP)
	$(PY) bench/evaluator.py $(BENCH_ARGS)

# A shop's data (10k users, 1k accounts, 300k events) through the client, and live audiences;
# `make demo DEMO_ARGS="--users 1000 --events 30000"` for a smaller one.
demo: $(STAMP)
	$(PY) scripts/demo.py $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/http/node/node_modules $(CONSOLE)/node_modules
