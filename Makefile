# huptime - see README.md. `make demo` shows the main job, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/huptime/__init__.py)

SOURCES := pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h src/huptime/*.py)

.PHONY: install test demo bench shim man wheel deb deb-deps rpm version clean

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

DEB_DEPS := debhelper dh-python gcc python3-all python3-setuptools python3-wheel

## deb-deps: install what `make deb` needs (Debian/Ubuntu, as root)
deb-deps:
	apt-get install -y --no-install-recommends $(DEB_DEPS) dpkg-dev

## deb: build the .deb from the committed tree (git archive) into dist/
deb:
	rm -rf build/deb && mkdir -p build/deb/huptime dist
	git archive HEAD | tar -x -C build/deb/huptime
	cd build/deb/huptime && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b
	mv build/deb/*.deb dist/
	@ls -l dist/*.deb

## version: print the version the packages get
version:
	@echo $(VERSION)

## rpm: build the binary .rpm from the committed tree into dist/ (rpm/huptime.spec;
## on Debian with its rpm package: --nodeps, as its rpm database knows no packages)
rpm:
	rm -rf build/rpm && mkdir -p build/rpm/SOURCES dist
	git archive --prefix=huptime-$(VERSION)/ -o build/rpm/SOURCES/huptime-$(VERSION).tar.gz HEAD
	PATH=/usr/sbin:/usr/bin:/sbin:/bin rpmbuild -bb --nodeps --define "_topdir $(CURDIR)/build/rpm" rpm/huptime.spec
	mv build/rpm/RPMS/*/*.rpm dist/
	@ls -l dist/*.rpm

## shim: just the shared library, into build/ (for hacking on csrc/)
shim:
	mkdir -p build
	cc -std=gnu11 -O2 -flto -g -Wall -Wextra -fPIC -fvisibility=hidden -o build/libhuptime.so \
	   csrc/*.c -shared -flto=auto -Wl,-z,defs -Wl,-z,now -ldl -pthread

clean:
	rm -rf $(VENV) build src/*.egg-info src/huptime/libhuptime.so .pytest_cache
