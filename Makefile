# vpcflow-ipfix: see README.md. Every target works offline on a fresh machine once the
# Go modules are downloaded (.ci/run does that).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CGO_ENABLED ?= 0
FUZZTIME ?= 10s

.PHONY: build test vet fuzz demo bench clean e2e cdk-cli synth deploy

## build: the Lambda binary, dist/bootstrap (linux/arm64, provided.al2023)
build:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o dist/bootstrap ./lambda
	@ls -l dist/bootstrap

## test: formatting, vet, the race-checked unit and integration tests, and brief fuzzing
test: vet
	CGO_ENABLED=1 go test -race -count=1 ./...
	$(MAKE) fuzz

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...

## fuzz: every parser and the IPFIX round trip, FUZZTIME each
fuzz:
	go test -run='^$$' -fuzz='^FuzzReader$$' -fuzztime=$(FUZZTIME) ./pkg/flowlog
	go test -run='^$$' -fuzz='^FuzzParseAddr$$' -fuzztime=$(FUZZTIME) ./pkg/flowlog
	go test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./pkg/notify
	go test -run='^$$' -fuzz='^FuzzRoundTrip$$' -fuzztime=$(FUZZTIME) ./pkg/ipfix

## e2e: end-to-end tests on real local components: the bootstrap under the Lambda runtime
## interface emulator, versitygw (S3), goflow2 (collector), the SQS event source played
## by the harness; all on 127.0.0.1 (e2e/README.md)
e2e:
	bash e2e/run.sh

## demo: replay the sample objects through the real pipeline to the debug collector
demo:
	bash scripts/demo.sh

## bench: benchmarks with allocations per operation, the encoding comparison with
## vmware/go-ipfix (bench/goipfixcmp, a nested module: go-ipfix stays out of go.mod), then
## the harness (bench/): end to end against gzip -dc, peak RSS, cold start, go-ipfix
## ratio, pacing precision; prints one table. The objects are generated once into
## BENCH_DIR. BENCH_FLAGS=-quick for a shorter run. The comparison needs the nested
## module's own downloads (cd bench/goipfixcmp && go mod download); without them its line
## fails, make goes on ("-"), and the harness reports the row NOT RUN with the reason.
BENCH_DIR   ?= $(HOME)/.cache/vpcflow-bench
BENCH_FLAGS ?=
bench:
	go test -run='^$$' -bench=. -benchmem ./pkg/...
	-cd bench/goipfixcmp && go test -run='^$$' -bench=. -benchmem
	go run ./bench -dir $(BENCH_DIR) $(BENCH_FLAGS)

clean:
	rm -rf dist cdk.out

# --- infra (CDK) ---------------------------------------------------------
CDK_ENV   := AWS_EC2_METADATA_DISABLED=true
CDK       := .tools/node_modules/.bin/cdk
CDK_FLAGS := --no-notices --no-version-reporting -o cdk.out
STACKS    ?= VpcFlowIpfix
CONTEXT   ?=

cdk-cli:
	@bash infra/tools.sh >/dev/null

## synth: the CloudFormation template in cdk.out/, offline; cdk-nag findings fail it
synth: build cdk-cli
	$(CDK_ENV) $(CDK) synth $(CDK_FLAGS) -q $(CONTEXT)

## deploy: build and cdk deploy with CONTEXT="-c key=value ..." (see README, Deploy)
deploy: build cdk-cli
	$(CDK_ENV) $(CDK) deploy $(CDK_FLAGS) $(CONTEXT) $(STACKS)
