# osdef — the `image` guest OS definition for Ganeti.
#
#   make test      install what is missing (apt, venv, pip), then run every test tier, on every core
#   make demo      install what is missing, build the default image if absent, create a demo disk
#   make deb       build the Debian package build/deb/osdef_<version>_all.deb (build-deps from
#                  Debian only) and check it with lintian; install it on every node with apt
#   make install   the git route: what a node needs (apt runtime packages, a venv with the
#                  runtime deps and the pinned diskimage-builder), then write the OS dir
#                  (OS_DIR=/srv/ganeti/os/image by default)
#   make install-extstorage   the loopfile ExtStorage provider (docs/extstorage.md; rbd: osdef install-extstorage --provider rbd)
#   make bench     run the benchmarks (results in docs/benchmarks.md)
#   make e2fsprogs-images E2FSPROGS=DIR   unpack e2fsprogs' f_*/image.gz for the opt-in corpus test
#
# Every target is idempotent: it installs only what is missing.

SHELL      := /bin/bash
PYTHON     := /usr/bin/python3
VENV       := .venv
VPY        := $(VENV)/bin/python
OS_DIR     ?= /srv/ganeti/os/image
PYTEST_ARGS ?=
# `make test` runs the tiers on every core (pytest-xdist; tests/parallel.py says how they are
# split): TEST_WORKERS=auto is one worker per core, at most 4; TEST_WORKERS=0 runs them serially.
TEST_WORKERS ?= auto
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --maxprocesses=4 --dist loadgroup)

# Debian packages osdef needs on a node (runtime; debian/control's Depends say the same for
# the .deb), to build images (a node that runs `osdef image build`), and to test.
APT_RUNTIME := python3-guestfs libguestfs-tools linux-image-amd64 qemu-utils zstd \
               python3-venv python3-yaml e2fsprogs xfsprogs btrfs-progs dosfstools \
               gdisk fdisk util-linux libguestfs-xfs partclone python3-crc32c
# Optional at runtime, for disks given as rbd: URIs (Ceph RBD, userspace access): librbd for export,
# import and create's host-side copy, and qemu's rbd driver for the libguestfs appliance.
APT_RBD     := python3-rbd python3-rados qemu-block-extra
APT_BUILD   := debootstrap sudo
APT_NODE    := $(APT_RUNTIME) $(APT_BUILD)
# 7zip, mtools: the differential tier's FAT oracle and writer (tests/support/fatoracle.py);
# ceph-mon/-osd/-common: the ceph tier's throw-away cluster (tests/support/ceph.py)
APT_TEST    := qemu-system-x86 ovmf dnsmasq-base git curl procps 7zip mtools ceph-mon ceph-osd ceph-common
APT_PACKAGES := $(APT_NODE) $(APT_RBD) $(APT_TEST)
APT_BENCH   := dump ganeti-instance-debootstrap
# `make deb`: the Debian way, build-dependencies from Debian only (debian/control)
APT_DEB     := debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
               python3-yaml python3-zstandard dpkg-dev fakeroot lintian
VERSION     := $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null || sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)
DEB_DIR     := build/deb
DEB         := $(DEB_DIR)/osdef_$(VERSION)_all.deb
NODE_EXTRAS := build,fast
# Debian's own tools and /usr/bin/python3 only (not a python3 from a PATH such as pyenv's)
DEB_PATH    := /usr/sbin:/usr/bin:/sbin:/bin

TEST_DIRS := tests/pure tests/scripts tests/differential tests/appliance tests/boot tests/cluster tests/ceph \
             tests/trixie

.PHONY: all deps venv lint test test-unit install install-extstorage demo bench clean deb e2fsprogs-images

all: test

# $(call apt_ensure,PACKAGES): install those of PACKAGES that are missing (idempotent).
define apt_ensure
	@mkdir -p .stamps
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "apt: installing $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q >/dev/null && \
	    apt-get install -y -q --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@touch $@
endef

deps: .stamps/apt
.stamps/apt: Makefile
	$(call apt_ensure,$(APT_PACKAGES))

# What a node needs (make install): no test packages.
.stamps/apt-node: Makefile
	$(call apt_ensure,$(APT_NODE))

.stamps/apt-deb: Makefile
	$(call apt_ensure,$(APT_DEB))

# The benchmarks' reference tools (ganeti-instance-debootstrap's create and dump-based export).
.stamps/apt-bench: Makefile .stamps/apt
	$(call apt_ensure,$(APT_BENCH))

# $(call venv_ensure,EXTRAS): the venv (system site packages: python3-guestfs) with osdef
# installed editable with those pyproject extras.
define venv_ensure
	@mkdir -p .stamps
	@test -x $(VPY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	@$(VPY) -c 'import guestfs' || { echo "python3-guestfs is not importable from $(VENV)"; exit 1; }
	@$(VPY) -m pip install -q --disable-pip-version-check -e '.[$(1)]'
	@touch $@
endef

venv: .stamps/venv
.stamps/venv: pyproject.toml .stamps/apt
	$(call venv_ensure,test)

# the git route on a node: runtime deps, isal, the pinned diskimage-builder; no test tools
.stamps/venv-node: pyproject.toml .stamps/apt-node
	$(call venv_ensure,$(NODE_EXTRAS))

# ruff's rules and mypy --strict (pyproject.toml): the code is fully annotated, so a type slip fails here
lint: venv
	$(VENV)/bin/ruff check osdef hooks tests bench
	$(VENV)/bin/mypy

test: lint
	$(VPY) -m pytest $(XDIST) --durations=30 $(PYTEST_ARGS) $(TEST_DIRS)

# e2fsprogs' regression images for the opt-in corpus test (docs/stream.md): E2FSPROGS=<a clone of e2fsprogs>
e2fsprogs-images:
	@test -n "$(E2FSPROGS)" || { echo "usage: make e2fsprogs-images E2FSPROGS=/path/to/e2fsprogs"; exit 2; }
	@tests/differential/e2fsprogs-images.sh "$(E2FSPROGS)"

test-unit: venv
	$(VPY) -m pytest $(PYTEST_ARGS) tests/pure

install: .stamps/venv-node
	$(VENV)/bin/osdef install --os-dir $(OS_DIR)

install-extstorage: .stamps/venv-node
	$(VENV)/bin/osdef install-extstorage

# The Debian package, built from a copy of the tracked (and new, not ignored) files so the
# checkout stays clean; then lintian (errors and warnings fail; overrides are explained in
# debian/osdef.lintian-overrides).
deb: .stamps/apt-deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/osdef-$(VERSION)
	git ls-files -z --cached --others --exclude-standard | \
	    tar --null -T - --ignore-failed-read -cf - | tar -xf - -C $(DEB_DIR)/osdef-$(VERSION)
	cd $(DEB_DIR)/osdef-$(VERSION) && env PATH=$(DEB_PATH) dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
	    { tail -30 ../build.log; exit 1; }
	env PATH=$(DEB_PATH) lintian --fail-on error,warning $(DEB)
	@echo "built $(DEB)"

demo: venv
	$(VPY) -m osdef.demo

bench: venv .stamps/apt-bench
	@for b in bench/*_bench.py; do echo "== $$b"; $(VPY) $$b || exit 1; done

clean:
	rm -rf .stamps .pytest_cache .hypothesis build *.egg-info
