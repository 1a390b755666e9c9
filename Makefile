# talentmesh.mail — one entry point for set-up, tests and the local lab.
#   make test        everything CI runs (lint, sanity, units, emulator/contract/module tests, Molecule)
#   make lab         create the podman lab hosts and run site.yml against inventories/lab
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TOP        := $(abspath .)
VENV       := $(TOP)/.venv
PY         := $(VENV)/bin/python
BIN        := $(VENV)/bin
COLL_ROOT  := $(TOP)/.build/collections
COLL_LINK  := $(COLL_ROOT)/ansible_collections/talentmesh/mail
DEBIAN_RELEASES ?= 12 13
SCENARIO   ?=
# make lab LAB_S3=minio picks the lab's S3 backend (default: mail_s3_backend in inventories/lab, seaweedfs).
LAB_S3     ?=
# make lab STALWART_RELEASE=<downloaded stalwart-<rust-target>.tar.gz> STALWART_SHA256=<its sha256> [STALWART_VERSION=0.16.x]
# (or STALWART_URL=<release URL> STALWART_SHA256=…) runs a real Stalwart; without them the lab runs the emulator stand-in.
STALWART_RELEASE ?=
STALWART_URL     ?=
STALWART_SHA256  ?=
STALWART_VERSION ?=
LAB_VARS   := $(if $(LAB_S3),-e mail_s3_backend=$(LAB_S3)) \
  $(if $(STALWART_RELEASE),-e lab_stalwart_release=$(abspath $(STALWART_RELEASE))) \
  $(if $(STALWART_URL),-e lab_stalwart_release_url=$(STALWART_URL) -e stalwart_artifact_url=$(STALWART_URL)) \
  $(if $(STALWART_SHA256),-e lab_stalwart_release_sha256=$(STALWART_SHA256)) \
  $(if $(STALWART_VERSION),-e lab_stalwart_version=$(STALWART_VERSION))
export CONTAINERS_CONF := $(TOP)/testbed/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(COLL_ROOT)
export ANSIBLE_CONFIG := $(TOP)/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: help setup host venv upstream images lint sanity units emulator-tests role-tests k8s-tests molecule test lab lab-bench leak-check lab-destroy build docs bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: host venv upstream images ## everything a fresh Debian 12 machine needs (idempotent)

host: ## Debian packages for the test bed (podman, runc, debootstrap, clients)
	bash scripts/host-packages.sh

$(VENV)/.stamp: requirements-dev.txt constraints.txt
	/usr/bin/python3 -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

$(COLL_LINK):
	mkdir -p $(dir $(COLL_LINK))
	ln -sfn ../../../.. $(COLL_LINK)

venv: $(VENV)/.stamp $(COLL_LINK) ## project venv with pinned tooling; links the checkout as talentmesh.mail

upstream: ## pinned third-party data (Stalwart schema, CRD schemas) into .cache/upstream, checksum-verified
	bash scripts/fetch-upstream.sh

images: host ## Debian 12 and 13 systemd images for Molecule and the lab (rebuilt only when the recipe changes)
	for r in $(DEBIAN_RELEASES); do bash testbed/build-image.sh $$r; done

lint: venv ## yamllint + ansible-lint (production profile)
	yamllint --strict .
	ansible-lint

sanity: venv ## ansible-test sanity on a temporary ansible_collections/talentmesh/mail copy
	bash scripts/sanity.sh

units: venv upstream ## unit tests of plugins and helper code
	PYTHONPATH=$(COLL_ROOT) $(PY) -m pytest -q tests/unit

emulator-tests: venv upstream ## contract tests of the Stalwart emulator and module integration tests against it
	PYTHONPATH=$(COLL_ROOT) $(PY) -m pytest -q tests/contract tests/integration

role-tests: venv ## role input tests: bad input fails before any change (ansible-playbook on localhost, no containers)
	PYTHONPATH=$(COLL_ROOT) $(PY) -m pytest -q -n 2 tests/roles

k8s-tests: venv upstream ## offline Kubernetes manifest validator (schemas + policy) and its tests
	PYTHONPATH=$(COLL_ROOT) $(PY) -m pytest -q tests/kubernetes

molecule: venv images ## Molecule scenarios (all, or SCENARIO=name), each on its declared Debian releases
	bash scripts/molecule.sh $(SCENARIO)

build: venv ## build the collection tarball and check it installs with roles resolvable by FQCN
	bash scripts/build-check.sh

docs: venv ## regenerate docs/roles, docs/plugins, docs/reference.rst (antsibull-docs) and CHANGELOG.rst (antsibull-changelog)
	bash scripts/docs.sh
	bash scripts/changelog.sh

test: setup lint sanity units emulator-tests role-tests k8s-tests build molecule ## everything CI runs

lab: venv images upstream ## the whole platform on podman hosts (inventories/lab): site.yml, verification, a summary
	$(BIN)/ansible-playbook -i inventories/lab $(LAB_VARS) playbooks/lab-up.yml

leak-check: venv ## after `make lab`: a -vvv converge of the lab searched for its known secrets (output, argv, files, journals)
	$(PY) tests/leaks/leak_check.py --secrets-dir .cache/lab/secrets --ca-dir .cache/lab/ca -- \
	  $(BIN)/ansible-playbook -i inventories/lab $(LAB_VARS) site.yml

lab-bench: venv images upstream ## converge benchmark of the lab: first converge, unchanged re-run, ratio, re-run profile (recreates the lab)
	$(PY) bench/converge/run.py -i inventories/lab $(LAB_VARS)

lab-destroy: venv ## remove the lab containers and network (only those the lab created)
	$(BIN)/ansible-playbook playbooks/lab-down.yml

bench: venv upstream ## benchmarks (print their figures; not part of make test)
	PYTHONPATH=$(COLL_ROOT) $(PY) bench/principals/run.py

clean: ## remove build output (keeps the venv, images and caches)
	rm -rf .build/dist tests/output
