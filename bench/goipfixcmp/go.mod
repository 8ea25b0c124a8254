module github.com/vpcflow-ipfix/vpcflow-ipfix/bench/goipfixcmp

go 1.26.0

require (
	github.com/netsampler/goflow2/v2 v2.2.6
	github.com/vmware/go-ipfix v0.12.0
	github.com/vpcflow-ipfix/vpcflow-ipfix v0.0.0
	k8s.io/klog/v2 v2.130.1
)

require (
	github.com/go-logr/logr v1.4.2 // indirect
	github.com/pion/dtls/v2 v2.2.12 // indirect
	github.com/pion/logging v0.2.2 // indirect
	github.com/pion/transport/v2 v2.2.10 // indirect
	golang.org/x/crypto v0.41.0 // indirect
	golang.org/x/net v0.43.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/vpcflow-ipfix/vpcflow-ipfix => ../..
