# Two commands do everything on a fresh Debian/Ubuntu machine with Rust:
#   make run    muster on the demo city, with the simulator answering as volunteers
#   make run-cluster  the same on a local Redis Cluster (3 masters + 3 replicas, ports 17000-17005)
#   make test   every test (each test starts its own redis-server), fmt and clippy, and
#               schemathesis against the real binary (a pinned venv under target/)
.PHONY: run run-cluster test redis-server browser nginx build lint bench docker-context

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

run: redis-server build
	./target/release/muster check
	@echo "muster on http://127.0.0.1:8080 (simulator on 127.0.0.1:8081); Ctrl-C stops both"
	@./target/release/muster sim & SIM=$$!; \
	  trap 'kill $$SIM 2>/dev/null' EXIT INT TERM; \
	  ./target/release/muster serve

# Six redis-server nodes under target/cluster (kept between runs), joined once, stopped on exit.
CLUSTER_PORTS := 17000 17001 17002 17003 17004 17005
run-cluster: redis-server build
	@mkdir -p target/cluster; \
	  trap 'for p in $(CLUSTER_PORTS); do redis-cli -p $$p shutdown nosave >/dev/null 2>&1; done; kill $$SIM 2>/dev/null' EXIT INT TERM; \
	  for p in $(CLUSTER_PORTS); do mkdir -p target/cluster/$$p; \
	    redis-server --port $$p --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
	      --cluster-node-timeout 2000 --appendonly yes --save '' --dir target/cluster/$$p --daemonize yes >/dev/null; done; \
	  for p in $(CLUSTER_PORTS); do until redis-cli -p $$p ping >/dev/null 2>&1; do sleep 0.1; done; done; \
	  redis-cli -p 17000 cluster info | grep -q cluster_state:ok || \
	    redis-cli --cluster create $(foreach p,$(CLUSTER_PORTS),127.0.0.1:$(p)) --cluster-replicas 1 --cluster-yes >/dev/null; \
	  until redis-cli -p 17000 cluster info | grep -q cluster_state:ok; do sleep 0.2; done; \
	  export MUSTER__REDIS__URL=redis+cluster://127.0.0.1:17000,127.0.0.1:17001,127.0.0.1:17002; \
	  ./target/release/muster check && \
	  echo "muster on http://127.0.0.1:8080 on the cluster $$MUSTER__REDIS__URL; Ctrl-C stops it all" && \
	  { ./target/release/muster sim & SIM=$$!; ./target/release/muster serve; }

build:
	$(CARGO) build --release

test: redis-server browser nginx lint docker-context
	$(CARGO) test --all-targets
	./tests/schemathesis.sh

# No Docker engine here: build what the Dockerfile's build stage copies, exactly, in a temp
# dir (every COPY of the first stage, checked with --locked as its build runs, sharing the
# dependencies clippy just checked), and check every path the runtime stage copies exists.
docker-context:
	@ctx=$$(mktemp -d); trap 'rm -rf "$$ctx"' EXIT; \
	  awk '/^FROM /{n++} n==1 && /^COPY / && !/--from/ {for(i=2;i<NF;i++) print $$i}' Dockerfile > "$$ctx/.copies"; \
	  test -s "$$ctx/.copies" || { echo "docker-context: no COPY in the build stage"; exit 1; }; \
	  while read -r p; do cp -r "$$p" "$$ctx/" || exit 1; done < "$$ctx/.copies"; \
	  awk '/^FROM /{n++} n>=2 && /^COPY / && !/--from/ {for(i=2;i<NF;i++) print $$i}' Dockerfile | \
	    while read -r p; do test -e "$$p" || { echo "docker-context: runtime stage copies missing $$p"; exit 1; }; done || exit 1; \
	  echo "docker-context: building the build stage's context ($$(tr '\n' ' ' < "$$ctx/.copies"))"; \
	  rm "$$ctx/.copies"; \
	  CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) check --locked --manifest-path "$$ctx/Cargo.toml" --bins -q

# The benchmarks whose figures the README quotes.
bench: redis-server nginx
	$(CARGO) bench --bench registry
	$(CARGO) bench --bench fanout
	$(CARGO) bench --bench sms_sim
	$(CARGO) bench --bench board
	$(CARGO) bench --bench audit
	$(CARGO) bench --bench ack
	$(CARGO) bench --bench wait

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The command centre's browser tests drive Debian's headless Chromium through chromedriver;
# fonts-noto-cjk draws the Chinese (without it, boxes). Installed from the OS packages if missing.
browser:
	@if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
	    || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  echo "chromium, chromium-driver or fonts-noto-cjk missing: installing them from the OS packages"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver fonts-noto-cjk >/dev/null; \
	  command -v chromedriver >/dev/null 2>&1 || { echo "could not install chromium-driver"; exit 1; }; \
	fi

# The fan-out benchmark's webhook receiver (`return 204`, deliveries counted from its access
# log); `cargo test --all-targets` runs that benchmark once, small. Installed if missing.
NGINX := $(firstword $(wildcard /usr/sbin/nginx /usr/local/sbin/nginx /usr/bin/nginx))
nginx:
	@test -n "$(NGINX)" || { \
	  echo "nginx not found: installing it from the OS packages"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	  test -x /usr/sbin/nginx || { echo "could not install nginx"; exit 1; }; }

# muster runs its own redis-server (tests too); install it from the OS packages if missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing it from the OS packages"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; \
	  command -v redis-server >/dev/null 2>&1 || { echo "could not install redis-server"; exit 1; }; }
