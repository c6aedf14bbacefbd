// Package deploy holds zabkeeper's container image (docker/), a three-server
// Docker Compose ensemble (compose/) and Kubernetes manifests (kubernetes/).
//
// It has no code of its own; its tests keep those files honest: every
// Kubernetes manifest is decoded strictly with the official API types, and
// the wiring between them (ports, probes, mounts, the image name, the
// zoo.cfg keys, read by the server's own parser) is checked, so a typo fails
// `go test ./deploy` rather than a rollout. The container tests that run the
// image are in deploy/dockertest (make docker-test).
package deploy
