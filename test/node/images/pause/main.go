// The pod sandbox's pause process for the real-node tests: holds the pod's namespaces and
// waits for SIGTERM or SIGINT, like Kubernetes' pause image, as a static binary in a scratch image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	// As PID 1 of a shared PID namespace it would also reap orphans; SIGCHLD is drained here.
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-signals:
			os.Exit(0)
		case <-children:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
