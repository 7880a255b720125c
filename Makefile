# Every command a developer needs. `make run` and `make test` work on a fresh
# machine with only Go installed (see README.md).

GO      ?= go
PKGS    ?= ./...
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X ldkbackup/internal/app.Version=$(VERSION)

.PHONY: run test build generate verify lint fmt bench fuzz db-stop clean

## run: start the server on 127.0.0.1:3003 with a local PostgreSQL and a dev key pair
# It builds bin/dev (cmd/dev, the development command; bin/server has no
# development tooling) first and says so: the first build compiles every
# dependency and is otherwise silent for a minute or more.
run:
	@if [ -x bin/dev ]; then echo "==> building bin/dev"; \
	else echo "==> building bin/dev for the first time: this downloads and compiles every dependency (a minute or two; later builds take seconds)"; fi
	@$(GO) build -ldflags "$(LDFLAGS)" -o bin/dev ./cmd/dev
	@echo "==> bin/dev"
	@bin/dev

## test: run every test against a real PostgreSQL (TEST_DATABASE_URL, or found/started locally)
# The alert rule tests of deploy/ need promtool and prometheus; go test
# shows no skip of a passing package, so say it here.
test:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || \
		echo "==> promtool or prometheus not found: the alert rule and real-Prometheus tests in deploy/ skip (Debian: apt-get install prometheus; .ci/run installs it)"
	$(GO) test -race -count=1 $(PKGS)

## build: build bin/server
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/server ./cmd/server

## generate: regenerate the sqlc query code from db/queries and db/migrations, and
## the VSS protobuf code (internal/vsspb) from proto/vss.proto (needs protoc:
## Debian protobuf-compiler; protoc-gen-go is pinned in go.mod as a tool)
generate:
	$(GO) tool sqlc generate
	@$(MAKE) --no-print-directory protoc OUT=.

# protoc writes internal/vsspb under OUT (the module's root layout), with
# the pinned protoc-gen-go built into bin/.
OUT ?= .
.PHONY: protoc
protoc:
	@command -v protoc >/dev/null 2>&1 || { echo "protoc not found: install it (Debian: apt-get install protobuf-compiler); make test and make run do not need it"; exit 1; }
	@$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	protoc --plugin=protoc-gen-go=bin/protoc-gen-go --go_out=$(OUT) --go_opt=module=ldkbackup proto/vss.proto

## verify: fail if generated code, go.mod or formatting are out of date, or if
## the production binary links development tooling (internal/devdb installs PostgreSQL)
verify:
	$(GO) tool sqlc diff
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(MAKE) --no-print-directory protoc OUT=$$tmp >/dev/null && \
	  diff -r -I '^// 	protoc  ' internal/vsspb $$tmp/internal/vsspb || { echo "internal/vsspb is stale: run make generate"; exit 1; }
	$(GO) mod tidy -diff
	@! $(GO) list -deps ./cmd/server | grep -x 'ldkbackup/internal/devdb' || { echo "cmd/server must not import internal/devdb: development tooling belongs in cmd/dev"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## lint: go vet, gofmt and staticcheck (pinned in go.mod as a tool)
lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the Go benchmarks, then the load benchmark with every scenario (about 10 minutes; docs/performance.md)
bench: bench-go bench-load

.PHONY: bench-go bench-load bench-scale

## bench-go: Go benchmarks (signature sign/verify, the persist path without HTTP), printed as figures
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# LOADGEN_FLAGS are passed to cmd/loadgen, e.g. LOADGEN_FLAGS="-duration 30s -keep".
LOADGEN_FLAGS ?=

## bench-load: cmd/loadgen with a server and database of its own: one JSON line per scenario
bench-load:
	$(GO) run ./cmd/loadgen $(LOADGEN_FLAGS)

## bench-scale: only the scale scenario: 2,000,000 stored objects against an empty database (about 4 minutes)
bench-scale:
	$(GO) run ./cmd/loadgen -scenarios scale $(LOADGEN_FLAGS)

## fuzz: run each fuzz target for FUZZTIME (default 60s); their seed corpora run in make test
FUZZTIME ?= 60s
FUZZ_TARGETS = \
	./internal/zbase32:FuzzDecode ./internal/zbase32:FuzzRoundTrip ./internal/lnsig:FuzzVerify \
	./internal/backup:FuzzParseObjectKey ./internal/backup:FuzzParseNodeKey ./internal/auth:FuzzParseTimestamp \
	./internal/app:FuzzHTTPHandler ./internal/vssauth:FuzzParseSignatureHeader ./internal/vssauth:FuzzJWTAuthorize
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## db-stop: stop the project-local PostgreSQL under .data/ (if make run started one)
db-stop:
	$(GO) run ./cmd/dev db-stop

clean:
	rm -rf bin

## drill: reliability drills (PostgreSQL restarts, SIGKILL, replicas, slow clients, memory) against real processes and a private PostgreSQL; DRILLFLAGS=-only=replicas runs one (docs/reliability-drills.md)
.PHONY: drill
drill:
	@$(GO) run ./cmd/drill $(DRILLFLAGS)

## ha-up: a local pg_auto_failover formation (monitor, primary, synchronous secondary) under .data/ha; prints DATABASE_URL=... last (docs/deployment.md)
## ha-down: stop it and remove .data/ha
.PHONY: ha-up ha-down
ha-up:
	@$(GO) run ./cmd/ha up
ha-down:
	@$(GO) run ./cmd/ha down
