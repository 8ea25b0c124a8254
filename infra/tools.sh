#!/usr/bin/env bash
# Installs the pinned AWS CDK CLI under .tools/ at the repository root, a
# directory that git ignores and `go ./...` skips (it starts with a dot), so
# node_modules never enters the Go module tree. Idempotent: does nothing when
# the pinned version is already there. Prints the path of the cdk binary.
set -euo pipefail
CDK_CLI_VERSION="${CDK_CLI_VERSION:-2.1148.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/node_modules/.bin/cdk"
have="$(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 "$bin" --version 2>/dev/null | cut -d' ' -f1 || true)"
if [ "$have" != "$CDK_CLI_VERSION" ]; then
	npm install --prefix "$root/.tools" --no-audit --no-fund --save-exact --loglevel=error "aws-cdk@$CDK_CLI_VERSION" >&2
fi
echo "$bin"
