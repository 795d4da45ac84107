# Two commands do everything on a fresh machine:
#   make run    install, then serve with the embedded defaults (SQLite under ./var, in-memory routing)
#   make test   install (with test tools and Debian's Chromium), then run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test install install-test chromium netedge-tools systemd-tools form-tools bench-tools lint bench

$(BIN)/vwin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/vwin
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/vwin
install-test: $(VENV)/.test-deps chromium netedge-tools systemd-tools form-tools bench-tools

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	@# Without a CJK font Chromium draws the Chinese pages (and their screenshots) as boxes.
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk)

# coturn, nginx, nftables and iproute2: the TURN, reverse-proxy and network-namespace tests.
netedge-tools:
	@command -v turnserver >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 \
		&& command -v nft >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			coturn nginx-light nftables iproute2 \
			&& (systemctl disable --now coturn nginx 2>/dev/null || true))

bench-tools:  # redis-server: bench.day (and its CI test) runs a private one on a free port
	@command -v redis-server >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server \
		&& (systemctl disable --now redis-server 2>/dev/null || true))

systemd-tools:  # systemd-analyze, for the unit files' test
	@command -v systemd-analyze >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd)

# WeasyPrint's libraries (Pango, HarfBuzz) to render the forms; poppler's pdftotext reads
# them back in the tests. The CJK font comes with the chromium target above.
form-tools:
	@dpkg -s libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 poppler-utils \
		>/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
		-y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 poppler-utils)

run: install
	$(BIN)/vwin serve

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/mypy

# The tests' files (SQLite databases, recordings, browser profiles) in memory when there is
# room: every session-log append is a durable commit, and a slow disk's fsync made CI slow.
TEST_TMP := $(shell [ "$$(df --output=avail -BG /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)" -ge 4 ] 2>/dev/null && echo /dev/shm/vwin-tests)

test: install-test lint
	$(if $(TEST_TMP),mkdir -p $(TEST_TMP) &&) $(if $(TEST_TMP),TMPDIR=$(TEST_TMP)) \
		$(BIN)/pytest -p no:cacheprovider -p xdist.plugin -n 2 --dist loadfile \
		--no-loadscope-reorder --durations=25

bench: install-test
	$(BIN)/python -m bench.all
