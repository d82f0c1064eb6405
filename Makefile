# Tandem: the two commands are `make run` (build and boot the lab pair) and `make test` (every
# test tier). Both install what they need on a Debian machine, as root, idempotently.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BOARD ?= qemu-lab
TARGET := x86_64-unknown-linux-gnu
TANDEM := target/$(TARGET)/release/tandem
IMAGE_DIR := target/image/$(BOARD)
# The lab image: the same image plus lab-only test programs (never shipped).
LAB_IMAGE_DIR := target/image/$(BOARD)-lab
# The bench image: the lab image plus Debian's ipvsadm and its shared libraries (the IPVS baseline).
BENCH_IMAGE_DIR := target/image/$(BOARD)-bench
LAB_HTTPD := target/$(TARGET)/release/lab-httpd
LAB_LVS_BENCH := target/$(TARGET)/release/lab-lvs-bench
# Static, non-PIE: `file` says "statically linked" and nothing is resolved at run time.
STATIC_RUSTFLAGS := -C target-feature=+crt-static -C relocation-model=static
# `make fuzz`: every target this long. `make test` gives each FUZZ_TEST_SECONDS instead (the
# same 16 targets, from the same growing corpus; the long run stays `make fuzz`).
FUZZ_SECONDS ?= 20
FUZZ_TEST_SECONDS ?= 5
DEBIAN_PACKAGES := qemu-system-x86 linux-image-amd64 keepalived tcpdump iproute2 iputils-ping curl \
	nftables procps file cpio kmod ca-certificates ipvsadm prometheus \
	binutils systemd-boot-efi ovmf chrony dnsmasq-base
export CARGO_TERM_COLOR ?= never

.PHONY: help deps tandem image lab-image bench-image run test test-unit test-lab lint fuzz fuzz-test fuzz-deps bench clean-lab

help:
	@echo "make run    build the image and boot the lab pair (box-a, box-b, rs1, rs2, client)"
	@echo "make test   install what is needed, then run every test tier"
	@echo "make image  build target/image/\$$(BOARD)/ and its disk image tandem-\$$(BOARD).img (BOARD=$(BOARD))"
	@echo "make bench  print size, boot and engine figures"
	@echo "make fuzz   run every fuzz target for FUZZ_SECONDS=$(FUZZ_SECONDS) s"

# Debian packages, installed only when one is missing (apt-get update only then, too).
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Appliance only: it aborts on panic (the panic hook logs and reboots; it prints no backtrace)
# and is stripped, so nothing reads its unwind tables (~470 KB of the 4 MiB budget). Passed to
# the final link only (cargo rustc), so dependencies stay shared with the other builds, whose
# tests need unwinding.
TANDEM_LINK_ARGS := -C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,-T,$(CURDIR)/firmware/daemon/no-unwind-tables.ld
tandem:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" cargo rustc --release --target $(TARGET) -p tandem-daemon --bin tandem --no-default-features -- $(TANDEM_LINK_ARGS)
	@file $(TANDEM) | grep -q 'statically linked' || { echo "$(TANDEM) is not static"; exit 1; }

image: deps tandem
	cargo run --quiet --release -p tandem-image -- build --board $(BOARD) --tandem $(TANDEM) \
		--out $(IMAGE_DIR) --install-kernel --disk

# Lab image: adds /lab/lab-httpd (static), started only by `tandem.lab_exec=` on the cmdline.
# It also carries tandem-ipvs's kernel test binary (/lab/ipvs-kernel-tests) and southbound's
# bond one (/lab/bond-kernel-tests): the host kernel has neither IPVS nor bonding, so
# tests/tests/lab_ipvs_kernel.rs and lab_bond_kernel.rs run them in a box. One cargo build for
# all four: one feature resolution, so the crates they share compile once (three invocations
# resolved three feature sets and compiled nix, tandem-config ... southbound up to three times).
lab-image: image
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" cargo build --release --target $(TARGET) -p tandem-lab \
		-p tandem-ipvs -p tandem-southbound --bin lab-httpd --bin lab-lvs-bench \
		--test kernel --test bond_kernel --message-format=json-render-diagnostics \
		> target/lab-programs.json
	@sed -n 's/.*"executable":"\([^"]*\/kernel-[^"]*\)".*/\1/p' target/lab-programs.json \
		| tail -1 > target/ipvs-kernel-tests.path
	@sed -n 's/.*"executable":"\([^"]*\/bond_kernel-[^"]*\)".*/\1/p' target/lab-programs.json \
		| tail -1 > target/bond-kernel-tests.path
	@for p in target/ipvs-kernel-tests.path target/bond-kernel-tests.path; do \
		[ -s $$p ] || { echo "$$p: no test executable in target/lab-programs.json"; exit 1; }; done
	@for b in $(LAB_HTTPD) $(LAB_LVS_BENCH) $$(cat target/ipvs-kernel-tests.path) \
		$$(cat target/bond-kernel-tests.path); do \
		file $$b | grep -q 'statically linked' || { echo "$$b is not static"; exit 1; }; done
	cargo run --quiet --release -p tandem-image -- build --board $(BOARD) --tandem $(TANDEM) \
		--out $(LAB_IMAGE_DIR) --extra $(LAB_HTTPD):lab/lab-httpd \
		--extra $(LAB_LVS_BENCH):lab/lab-lvs-bench \
		--extra $$(cat target/ipvs-kernel-tests.path):lab/ipvs-kernel-tests \
		--extra $$(cat target/bond-kernel-tests.path):lab/bond-kernel-tests

# Bench image: the lab image plus /lab/ipvsadm with the libraries `ldd` names (and ld.so), so the
# IPVS bench can time `ipvsadm -R` in the same boot as Tandem's loader.
bench-image: lab-image
	extras=$$(ldd /usr/sbin/ipvsadm | awk '$$2 == "=>" && $$3 ~ /^\// {print "--extra " $$3 ":" substr($$3, 2)} \
		$$1 ~ /^\/lib64\// {print "--extra " $$1 ":" substr($$1, 2)}'); \
	cargo run --quiet --release -p tandem-image -- build --board $(BOARD) --tandem $(TANDEM) \
		--out $(BENCH_IMAGE_DIR) --extra $(LAB_HTTPD):lab/lab-httpd \
		--extra $(LAB_LVS_BENCH):lab/lab-lvs-bench --extra /usr/sbin/ipvsadm:lab/ipvsadm $$extras

run: lab-image
	cargo build --quiet --release -p tandem-lab --bin lab
	target/release/lab

test: image lab-image lint test-unit fuzz-test

# Every cargo test, lab tests included (they boot $(IMAGE_DIR) under qemu).
test-unit:
	cargo test --workspace --no-fail-fast

test-lab: image lab-image
	cargo test -p tandem-lab

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

fuzz: fuzz-deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-test: fuzz-deps
	tests/fuzz/run.sh $(FUZZ_TEST_SECONDS)

bench: image lab-image bench-image
	@grep '^bench:' $(IMAGE_DIR)/manifest.txt
	cargo run --quiet --release -p tandem-lab --bin bootbench
	cargo run --quiet --release -p tandem-lab --bin lvsbench
	cargo run --quiet --release -p tandem-lab --bin bondbench
	cargo run --quiet --release -p tandem-lab --bin metricsbench
	cargo run --quiet --release -p tandem-lab --bin uefibench
	@# The firmware figures come from the lab tests that measure them (install write, bundle
	@# to the partner, rolling pair upgrade: the client's worst gap).
	cargo test --quiet -p tandem-lab --test lab_firmware_upgrade --test lab_pair_firmware \
		--test lab_pair_upgrade -- --nocapture --test-threads=1 2>&1 | grep -o 'bench:.*'
	cargo bench --workspace --quiet 2>/dev/null | grep '^bench:' || true

clean-lab:
	@for ns in $$(ip netns list | awk '/^tlab-/{print $$1}'); do ip netns del $$ns; done
	@pkill -f 'qemu-system-x86_64.*tandem-lab' || true
	@rm -rf /tmp/tandem-lab
