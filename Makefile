# cfrollback — `make demo` runs the drill, `make test` runs every test.
# Both install what they need first (scripts/setup-deps.sh).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# -s -w: no symbol table and no DWARF (24 MB -> 16 MB; 17.8 MB as a PIE); a panic's stack trace keeps its
# function names and lines (they are in pclntab), and the -X version stamp is data, not a symbol.
LDFLAGS := -s -w -X github.com/cfrollback/cfrollback/internal/cli.Version=$(VERSION) \
           -X github.com/cfrollback/cfrollback/internal/cli.Commit=$(COMMIT) \
           -X github.com/cfrollback/cfrollback/internal/cli.Date=$(DATE)
BIN := bin/cfrollback
export PATH := $(CURDIR)/tools/pm2/node_modules/.bin:$(PATH)

.PHONY: all build deps demo test test-faults test-fuzz test-unit test-race vet lint fmt-check tidy-check bench man docs deb clean

all: build

deps:
	@bash scripts/setup-deps.sh

# -buildmode=pie: a position-independent executable, loaded at a random address (Debian's
# hardening default; lintian's hardening-no-pie).
build:
	@mkdir -p bin
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=pie -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cfrollback

demo: deps build
	./$(BIN) drill

# The whole suite, as CI runs it: vet, golangci-lint, gofmt, tidy, then every package with
# -race, real systemd (in its own namespaces, as root), real pm2 and the real
# claude-flow from npm (internal/integration's realapp tests, 1-4 min each).
test: deps vet lint fmt-check tidy-check
	$(GO) test -race -count=1 -timeout 45m ./...
	$(MAKE) test-fuzz FUZZTIME=10s

# Fault injection (part of `make test` too): SIGKILL at every step, disk full,
# a unit that ignores SIGTERM, never healthy, unwritable journal, two runs,
# unreadable backup dir, and the hostile-input corpus.
test-faults: deps
	$(GO) test -count=1 -run 'TestFault|TestCrashAtEveryStep|TestTwoRenameFallback|TestHostileCorpus' -v ./internal/integration/

# Every fuzz target for a bounded time (CI: 10s each). A crasher is saved
# under testdata/fuzz/ by go test and then runs as a regression case. Go's fuzz
# engine sometimes ends a run with "context deadline exceeded" while it is
# minimizing a new (not failing) input at the deadline: that is retried once and
# never hides a real failure ("Failing input written" always fails the target).
FUZZTIME ?= 30s
FUZZ_TARGETS := ./internal/archive:FuzzExtract ./internal/journal:FuzzReadAll \
  ./internal/service:FuzzParseSystemctlShow ./internal/service:FuzzParseJlist ./internal/settings:FuzzSettingsFile \
  ./internal/appconfig:FuzzValidate ./internal/appconfig:FuzzParseSet \
  ./internal/backup:FuzzDecodeManifest ./internal/appconfig:FuzzSetKey
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  for try in 1 2; do \
	    if $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/cfrollback-fuzz.log 2>&1; then break; fi; \
	    if grep -q 'Failing input written' /tmp/cfrollback-fuzz.log || ! grep -q 'context deadline exceeded' /tmp/cfrollback-fuzz.log; then \
	      cat /tmp/cfrollback-fuzz.log; exit 1; fi; \
	    echo "  $$fn: go's fuzz engine hit its own deadline (no failing input); $$( [ $$try = 1 ] && echo retrying || echo 'counted as no crasher')"; \
	  done; \
	done; echo "fuzz: $(words $(FUZZ_TARGETS)) targets, no crashers"

test-unit:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

# golangci-lint with the linters and exclusions of .golangci.yml (each exclusion says why),
# pinned and built into tools/gobin by scripts/setup-deps.sh.
lint: deps
	tools/gobin/golangci-lint run ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi

tidy-check:
	@cp go.mod /tmp/cfrollback-go.mod.bak; cp go.sum /tmp/cfrollback-go.sum.bak; \
	$(GO) mod tidy; \
	if ! cmp -s go.mod /tmp/cfrollback-go.mod.bak || ! cmp -s go.sum /tmp/cfrollback-go.sum.bak; then \
	  cp /tmp/cfrollback-go.mod.bak go.mod; cp /tmp/cfrollback-go.sum.bak go.sum; \
	  echo "go mod tidy changes go.mod/go.sum: run it and commit"; exit 1; fi

# Downtime of `cfrollback emergency` vs the seed's shell procedure (docs/BENCHMARKS.md),
# then the archive package's Go benchmarks.
bench: deps build
	bash scripts/bench-downtime.sh "small large xl" 3
	$(GO) test -run '^$$' -bench . -benchtime 3x ./internal/archive/
	bash scripts/bench-db.sh 500
	bash scripts/bench-backup.sh 500 20000 3

# Man pages (one per command) and shell completions, from the command tree, into dist/pkg.
# Dated SOURCE_DATE_EPOCH, by default the commit's time, so a commit always gives the same
# pages (reproducible-builds.org).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
man:
	rm -rf dist/pkg && mkdir -p dist/pkg
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/cfrollback-docs dist/pkg
	gzip -9nf dist/pkg/man1/*.1

# docs/COMMANDS.md, the table of every command (changes, --json, --dry-run, --yes, completion,
# exit codes), from the command tree; `go test ./internal/cli` fails while it is stale.
docs:
	$(GO) test ./internal/cli -run '^TestCommandTable$$' -count=1 -update

# A .deb: the stripped binary, man pages and completions, /etc/cfrollback/config.yaml as a
# conffile, the copyright file (machine-readable: every Go module linked in) and a changelog
# for this version: changelog.gz, as Debian names it in a native package (a version without
# a -REVISION, built from this repository itself). nfpm comes from the Go module proxy.
NFPM ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_VERSION ?= 0.1.0+git$(COMMIT)
deb: build man
	mkdir -p dist/pkg/systemd && for u in configs/systemd/cfrollback-backup.service configs/systemd/cfrollback-backup.timer configs/systemd/cfrollback-guard.service; do \
	  sed 's|/usr/local/bin/cfrollback|/usr/bin/cfrollback|g' $$u > dist/pkg/systemd/$$(basename $$u); done
	sed -e 's|@VERSION@|$(DEB_VERSION)|' -e 's|@COMMIT@|$(COMMIT)|g' \
	  -e "s|@DATE@|$$(date -u -R -d @$(SOURCE_DATE_EPOCH) 2>/dev/null || date -u -R)|" \
	  packaging/changelog.in | gzip -9n > dist/pkg/changelog.gz
	DEB_VERSION=$(DEB_VERSION) $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t dist/

clean:
	rm -rf bin dist
