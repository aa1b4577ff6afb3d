// Package chaos is sagedeploy's fault suite: it drives the real sagedeploy binary as separate
// processes — `sagedeploy local`, `sagedeploy server` and the deployer's commands — and injects
// faults a user meets in practice: kill -9 at random points, deployments racing on one endpoint,
// invocations during deployments, corrupt artifacts and malformed requests. Each test asserts what
// a user would notice afterwards (no failed request, exactly the resources one run makes, releases
// in a final state, every acknowledged event kept), never how long anything took.
//
// The tests carry the build tag chaos, so the ordinary `go test ./...` skips them; run them with
// scripts/chaos.sh, or
//
//	go test -tags chaos -count=1 ./internal/chaos/
//
// which builds the binary first unless SAGEDEPLOY_BIN names one.
package chaos
