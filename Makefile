# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test load bench bench-flash bench-noisy fuzz soak conformance mutate clean

setup: $(STAMP)
	@$(PY) -m dmagent.host_tools.runtime.micropython ensure
	@$(PY) -m dmagent.host_tools.runtime.micropython ensure-frozen
	@$(PY) -m dmagent.host_tools.vboard ensure

$(STAMP): pyproject.toml setup.py constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found: install Python 3.9+"; exit 1; }
	@echo "setup: creating virtualenv $(VENV) and installing pinned dependencies"
	@$(PYTHON) -m venv $(VENV) || { echo "setup: python3 -m venv failed: apt-get install python3-venv"; exit 1; }
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $@

demo: setup
	@$(PY) -m dmagent.host_tools.demo

test: setup
	@$(PY) -m pytest -q

bench: setup
	@$(PY) -m dmagent.host_tools.bench.device

bench-flash: setup
	@$(PY) -m dmagent.host_tools.bench.flash --baud 115200

bench-noisy: setup
	@$(PY) -m dmagent.host_tools.bench.flash --noisy 10

fuzz: setup
	@DMAGENT_FUZZ=$${DMAGENT_FUZZ:-50} $(PY) -m pytest -q tests/host/test_cbor_interop.py \
		tests/host/test_crypto_interop.py tests/host/test_frame_props.py tests/host/test_acl_model.py

# The conformance suite on the virtual board (minutes); make test runs it on CPython and the device runtime.
conformance: setup
	@DMAGENT_CONFORMANCE_VBOARD=1 $(PY) -m pytest -q -s tests/host/test_conformance_vboard.py

# make test runs 10,000 requests on each target; this is the long version.
soak: setup
	@$(PY) -m dmagent.host_tools.bench.soak --runtime micropython --heap 110k --requests $${REQUESTS:-200000}
	@$(PY) -m dmagent.host_tools.bench.soak --runtime micropython --heap 110k --requests $${REQUESTS:-200000} --session-every 7
	@$(PY) -m dmagent.host_tools.bench.soak --runtime micropython-frozen --heap 110k --requests $${REQUESTS:-200000}
	@$(PY) -m dmagent.host_tools.bench.soak --vboard --requests $${REQUESTS:-200000}

# Mutation testing of the key modules (tools/mutate.py): MODULE=agent/acl.py, SAMPLE=40 to narrow it.
mutate: setup
	@$(PY) tools/mutate.py --jobs $${JOBS:-2} $${MODULE:+--module $$MODULE} $${SAMPLE:+--sample $$SAMPLE}

# 64 TCP clients x 1,000 ops on CPython; on the device runtime as many links as it holds,
# every other connect told 420 (make test runs a short version: tests/host/test_load.py).
load: setup
	@$(PY) -m dmagent.host_tools.bench.load --runtime cpython --clients $${CLIENTS:-64} --ops $${OPS:-1000}
	@$(PY) -m dmagent.host_tools.bench.load --runtime micropython --clients 8 --ops $${OPS:-1000} --heap 116k

clean:
	rm -rf $(VENV) .cache .pytest_cache .hypothesis
