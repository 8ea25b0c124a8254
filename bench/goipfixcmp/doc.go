// Package goipfixcmp measures our IPFIX encoder side by side with vmware/go-ipfix's
// exporter on the same flows and the same template. It is a module of its own, nested
// in bench/, so that go-ipfix and its dependencies never enter the product's go.mod:
// the root `go test ./...` and `go vet ./...` do not see it. See docs/performance.md.
package goipfixcmp
