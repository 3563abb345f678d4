// blackbox-driver drives a blackbox_exporter the way Prometheus does, with
// GET /probe?module=…&target=…, at the job's rate and concurrency, and reports the exporter's
// CPU and peak memory, not its own: it reads utime+stime from /proc/<pid>/stat before and after
// the measured phase, and VmHWM from /proc/<pid>/status. Its own CPU goes under "extra".
//
// With -exporter-bin it starts the exporter itself on a free loopback port, as a child that the
// kernel kills if the driver dies (Pdeathsig), and stops it at the end; with -exporter and -pid
// it drives one that is already running.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
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

// freePort returns a loopback port below the kernel's ephemeral range that was free a moment ago.
// A port from listen(":0") lies inside that range, and any outgoing connection may claim it
// between our Close and the exporter's bind ("address already in use").
func freePort() (int, error) {
	low := 49152
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port on 127.0.0.1 in 10000-%d after 100 attempts", low-1)
}

// startExporter starts the exporter on a free 127.0.0.1 port with its default log level (it logs
// every failed probe, as deployed, and that is part of its cost; the output is discarded), and
// waits until /-/healthy answers. If the exporter exits before it is ready (another process took
// the port in between), it tries again on another port, three times in all.
func startExporter(bin, config string) (*exec.Cmd, string, <-chan error, error) {
	var last error
	for range 3 {
		cmd, base, exited, err := startExporterOnce(bin, config)
		if err == nil {
			return cmd, base, exited, nil
		}
		last = err
	}
	return nil, "", nil, last
}

func startExporterOnce(bin, config string) (*exec.Cmd, string, <-chan error, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--config.file="+config, "--web.listen-address="+addr)
	// Pdeathsig goes with the OS thread that forks: keep this goroutine on one for the call.
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, "", nil, err
	}
	base := "http://" + addr
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for range 200 {
		select {
		case err := <-exited:
			return nil, "", nil, fmt.Errorf("blackbox_exporter ended before it was ready: %v", err)
		default:
		}
		if res, err := http.Get(base + "/-/healthy"); err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return cmd, base, exited, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, "", nil, fmt.Errorf("blackbox_exporter did not answer %s/-/healthy within 10 s", base)
}

func main() {
	jobPath := flag.String("job", "-", "job JSON file, - for standard input")
	exporter := flag.String("exporter", "", "base URL of the exporter, e.g. http://127.0.0.1:9115")
	pid := flag.Int("pid", 0, "process id of the exporter")
	bin := flag.String("exporter-bin", "", "start this blackbox_exporter binary instead of using -exporter and -pid")
	config := flag.String("config", "", "config file for -exporter-bin")
	flag.Parse()
	job, err := loop.ReadJob(*jobPath)
	if err != nil {
		loop.Fail(err)
	}
	if *bin != "" {
		cmd, base, exited, err := startExporter(*bin, *config)
		if err != nil {
			loop.Fail(err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}()
		*exporter, *pid = base, cmd.Process.Pid
	}
	if *exporter == "" || *pid <= 0 {
		loop.Fail(fmt.Errorf("-exporter-bin, or -exporter and -pid, are required"))
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
