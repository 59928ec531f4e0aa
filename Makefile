# huptime - see README.md. `make demo` shows the main job, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

SOURCES := pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h src/huptime/*.py)

.PHONY: install test demo bench shim man wheel clean

$(VENV)/.installed: $(SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check '.[test]'
	touch $@

## install: build the shim and install huptime with its test tools into .venv
install: $(VENV)/.installed

## test: the whole test suite (what CI runs)
test: install
	$(PY) -m pytest tests

## demo: a server under huptime, restarted 20 times under load, with the outcome
demo: install
	$(PY) benchmarks/demo.py

## bench: failures over 100 restarts, switch time, throughput, start cost, instructions
bench: install
	$(PY) benchmarks/bench.py

## man: regenerate docs/huptime.1 from the command-line definitions
man: install
	$(PY) -m huptime.manpage > docs/huptime.1

## wheel: a platform wheel (py3-none-linux_*) into dist/
wheel:
	$(PYTHON) -m pip wheel --no-deps -w dist .

## shim: just the shared library, into build/ (for hacking on csrc/)
shim:
	mkdir -p build
	cc -std=gnu11 -O2 -flto -g -Wall -Wextra -fPIC -fvisibility=hidden -o build/libhuptime.so \
	   csrc/*.c -shared -flto=auto -Wl,-z,defs -Wl,-z,now -ldl -pthread

clean:
	rm -rf $(VENV) build src/*.egg-info src/huptime/libhuptime.so .pytest_cache
