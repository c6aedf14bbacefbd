// Package dockertest runs zabkeeper's container image the way users do: it
// builds the image (make image), starts the deploy/compose ensemble under a
// project name of its own, drives it with go-zookeeper/zk clients from the
// host through the loopback-published ports, and injects real faults with
// Docker itself: docker kill of the leader, a follower restarted with a new
// IP, docker network disconnect of a follower and of the leader, and a
// rolling restart with docker stop (SIGTERM). The recorded history is checked
// with the linearizability package; no acknowledged write may be lost and no
// session may expire in the rolling restart.
//
// The test runs only with ZABKEEPER_DOCKER_TEST=1 (make docker-test); then a
// missing Docker daemon or docker-compose is a failure, never a skip. The
// package has no non-test code; its recorded sessions come from
// faults/load, which the real-process fault harness uses too.
package dockertest
