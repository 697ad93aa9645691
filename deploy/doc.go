// Package deploy holds no code of the service. Its tests check the deployment
// artifacts next to them: every Kubernetes manifest under kubernetes/ is decoded
// strictly into its real API type, the security and wiring properties sweeper
// relies on are asserted, and the Prometheus rules and the Grafana dashboard are
// parsed and checked against the metrics of the contract.
//
// It is a separate module so that the Kubernetes and Prometheus libraries never
// enter the service's own dependency graph. Run it with `cd deploy && go test ./...`.
package deploy
