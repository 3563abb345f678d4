// blackbox-driver drives a running blackbox_exporter the way Prometheus does, with
// GET /probe?module=…&target=…, at the job's rate and concurrency, and reports the exporter's
// CPU and peak memory, not its own: it reads utime+stime from /proc/<pid>/stat before and after
// the measured phase, and VmHWM from /proc/<pid>/status. Its own CPU goes under "extra".
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"readygate.dev/tools/bench/internal/loop"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func procUsage(pid int) (loop.Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return loop.Usage{}, err
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	rest := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(rest) < 13 {
		return loop.Usage{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(rest[11], 64) // field 14
	stime, _ := strconv.ParseFloat(rest[12], 64) // field 15
	u := loop.Usage{UserMs: utime * 1000 / clockTicks, SysMs: stime * 1000 / clockTicks}
	u.MaxRssKiB, err = loop.PeakRSS(fmt.Sprintf("/proc/%d/status", pid))
	return u, err
}

func main() {
	jobPath := flag.String("job", "-", "job JSON file, - for standard input")
	exporter := flag.String("exporter", "", "base URL of the exporter, e.g. http://127.0.0.1:9115")
	pid := flag.Int("pid", 0, "process id of the exporter")
	flag.Parse()
	job, err := loop.ReadJob(*jobPath)
	if err != nil {
		loop.Fail(err)
	}
	if *exporter == "" || *pid <= 0 {
		loop.Fail(fmt.Errorf("-exporter and -pid are required"))
	}
	// Keep-alive to the exporter, as Prometheus scrapes it: that side is not what is measured.
	client := &http.Client{
		Timeout: time.Duration(job.TimeoutMs)*time.Millisecond + 5*time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: job.Concurrency,
			DisableCompression:  true,
		},
	}
	module := map[string]string{"http": "http_2xx", "tcp": "tcp_connect"}[job.Kind]
	timeoutSeconds := strconv.FormatFloat(float64(job.TimeoutMs)/1e3, 'f', -1, 64)
	urls := make([]string, len(job.Targets))
	for i, t := range job.Targets {
		target := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
		if job.Kind == "http" {
			target = "http://" + target + t.Path
		}
		urls[i] = *exporter + "/probe?" + url.Values{"module": {module}, "target": {target}}.Encode()
	}
	successLine := []byte("\nprobe_success 1\n")
	run := func(i int, _ *loop.Target) bool {
		req, err := http.NewRequest(http.MethodGet, urls[i], nil)
		if err != nil {
			return false
		}
		// What Prometheus sends; the exporter derives the probe's deadline from it.
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutSeconds)
		res, err := client.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return err == nil && res.StatusCode == http.StatusOK && bytes.Contains(body, successLine)
	}
	r := loop.Run("blackbox", job, run, func() (loop.Usage, error) { return procUsage(*pid) })
	self, _ := loop.SelfUsage()
	r.Extra = map[string]any{"driverCpuUserMs": self.UserMs, "driverCpuSysMs": self.SysMs, "driverMaxRssKiB": self.MaxRssKiB}
	// Whole-process figures are the exporter's too.
	if u, err := procUsage(*pid); err == nil {
		r.ProcCPUUserMs, r.ProcCPUSysMs = u.UserMs, u.SysMs
	}
	loop.Print(r)
}
