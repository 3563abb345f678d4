// kubelet-prober probes the benchmark's targets with the kubelet's own prober code
// (k8s.io/kubernetes/pkg/probe/http and /tcp), built and called the way
// pkg/kubelet/prober/prober.go does: one HTTP prober made with New(false) and shared by every
// probe, a request built per probe from an HTTPGetAction with the pod IP as host and the "probe"
// user agent, Warning counted as success; TCP through tcp.New().Probe with its SO_LINGER 1 s
// dialer. It reads a job as JSON (see internal/loop) and prints a JSON report.
package main

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubernetes/pkg/probe"
	probehttp "k8s.io/kubernetes/pkg/probe/http"
	probetcp "k8s.io/kubernetes/pkg/probe/tcp"

	"readygate.dev/tools/bench/internal/loop"
)

func main() {
	job := loop.ParseFlags()
	timeout := time.Duration(job.TimeoutMs) * time.Millisecond
	httpProber := probehttp.New(false)
	tcpProber := probetcp.New()
	container := &v1.Container{Name: "app"}

	ok := func(r probe.Result, err error) bool {
		return err == nil && (r == probe.Success || r == probe.Warning)
	}
	var run loop.Probe
	switch job.Kind {
	case "http":
		run = func(_ int, t *loop.Target) bool {
			action := &v1.HTTPGetAction{Path: t.Path, Port: intstr.FromInt(t.Port), Scheme: v1.URISchemeHTTP}
			req, err := probehttp.NewRequestForHTTPGetAction(action, container, t.Host, "probe")
			if err != nil {
				return false
			}
			r, _, err := httpProber.Probe(req, timeout)
			return ok(r, err)
		}
	case "tcp":
		run = func(_ int, t *loop.Target) bool {
			r, _, err := tcpProber.Probe(t.Host, t.Port, timeout)
			return ok(r, err)
		}
	}
	loop.Print(loop.Run("kubelet", job, run, nil))
}
