// Package loop is the probe loop shared by the Go peers of readygate's benchmark: it reads a job,
// runs probes at a fixed aggregate rate with a fixed number in flight, and reports the process's
// CPU and memory as JSON. bench/engine/loop.ts is the same loop for readygate's own prober; keep
// the two in step, or the comparison is no longer like for like.
package loop

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Target is one entry of the farm's target list.
type Target struct {
	Kind string `json:"kind"` // "http" or "tcp"
	Host string `json:"host"`
	Port int    `json:"port"`
	Path string `json:"path,omitempty"`
	// Expect is whether a correct prober reports success (healthy and slow targets do,
	// refusing and failing ones do not).
	Expect   bool   `json:"expect"`
	Behavior string `json:"behavior"`
}

// Job says what to probe, how many times, how fast and with how many in flight.
type Job struct {
	Kind        string   `json:"kind"`
	Targets     []Target `json:"targets"`
	Probes      int      `json:"probes"`
	DurationMs  int      `json:"durationMs,omitempty"` // alternative to Probes: Probes = rate × duration
	Warmup      int      `json:"warmup"`
	Rate        float64  `json:"rate"`
	Concurrency int      `json:"concurrency"`
	TimeoutMs   int      `json:"timeoutMs"`
}

// Usage is CPU time and peak memory of the process being measured.
type Usage struct {
	UserMs, SysMs float64
	MaxRssKiB     int64
}

// Probe runs one probe of job.Targets[i] and says whether it succeeded.
type Probe func(i int, t *Target) bool

// Meter reads the usage of the measured process (by default this one).
type Meter func() (Usage, error)

// Report is what every peer prints: the same fields as bench/engine/readygate-runner.ts.
type Report struct {
	Peer              string  `json:"peer"`
	Kind              string  `json:"kind"`
	Probes            int     `json:"probes"`
	Successes         int64   `json:"successes"`
	Failures          int64   `json:"failures"`
	ExpectedSuccesses int     `json:"expectedSuccesses"`
	CPUUserMs         float64 `json:"cpuUserMs"`
	CPUSysMs          float64 `json:"cpuSysMs"`
	MaxRssKiB         int64   `json:"maxRssKiB"`
	WallMs            float64 `json:"wallMs"`
	LatenessP50Ms     float64 `json:"latenessP50Ms"`
	LatenessP99Ms     float64 `json:"latenessP99Ms"`
	LatenessMaxMs     float64 `json:"latenessMaxMs"`
	// Whole-process CPU since start, start-up included (the figures above cover the measured
	// phase only, after the warm-up).
	ProcCPUUserMs float64 `json:"procCpuUserMs"`
	ProcCPUSysMs  float64 `json:"procCpuSysMs"`
	// Extra is peer-specific detail (blackbox-driver puts its own CPU there).
	Extra map[string]any `json:"extra,omitempty"`
}

// SelfUsage reads this process's CPU with getrusage(RUSAGE_SELF) and its peak RSS from VmHWM.
// Not ru_maxrss: Linux carries it over from the parent across fork and execve, so a peer started
// by a big Node process would report the parent's peak.
func SelfUsage() (Usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, err
	}
	ms := func(tv syscall.Timeval) float64 { return float64(tv.Sec)*1e3 + float64(tv.Usec)/1e3 }
	hwm, err := PeakRSS("/proc/self/status")
	if err != nil {
		return Usage{}, err
	}
	return Usage{UserMs: ms(ru.Utime), SysMs: ms(ru.Stime), MaxRssKiB: hwm}, nil
}

// PeakRSS reads VmHWM, in KiB, from a /proc/<pid>/status file.
func PeakRSS(statusFile string) (int64, error) {
	b, err := os.ReadFile(statusFile)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in %s", statusFile)
}

// ReadJob parses the job from -job FILE, or standard input when the flag is absent or "-".
func ReadJob(path string) (Job, error) {
	var r io.Reader = os.Stdin
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return Job{}, err
		}
		defer f.Close()
		r = f
	}
	var job Job
	if err := json.NewDecoder(r).Decode(&job); err != nil {
		return Job{}, fmt.Errorf("reading job: %w", err)
	}
	if job.Probes <= 0 && job.DurationMs > 0 {
		job.Probes = int(job.Rate * float64(job.DurationMs) / 1e3)
	}
	var kept []Target
	for _, t := range job.Targets {
		if t.Kind == job.Kind {
			kept = append(kept, t)
		}
	}
	job.Targets = kept
	switch {
	case job.Kind != "http" && job.Kind != "tcp":
		return job, fmt.Errorf("job kind must be http or tcp, got %q", job.Kind)
	case len(job.Targets) == 0:
		return job, fmt.Errorf("no %s targets in the job", job.Kind)
	case job.Probes <= 0 || job.Rate <= 0 || job.Concurrency <= 0 || job.TimeoutMs <= 0:
		return job, fmt.Errorf("probes, rate, concurrency and timeoutMs must be positive")
	case job.Probes > 10_000_000:
		return job, fmt.Errorf("probes %d is beyond any sensible run", job.Probes)
	}
	return job, nil
}

// ParseFlags registers the common flags, parses the command line and reads the job.
func ParseFlags() Job {
	jobPath := flag.String("job", "-", "job JSON file, - for standard input")
	flag.Parse()
	job, err := ReadJob(*jobPath)
	if err != nil {
		Fail(err)
	}
	return job
}

// Fail prints the error and exits non-zero.
func Fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

type phase struct {
	successes, failures atomic.Int64
	lateness            []time.Duration
	wall                time.Duration
}

// runPhase runs count probes, the i-th planned at start + i/rate, on a fixed pool of
// `concurrency` workers. A probe whose worker is not free at its planned time starts late; the
// lateness is recorded and nothing is skipped.
func runPhase(job Job, count int, probe Probe) *phase {
	p := &phase{lateness: make([]time.Duration, count)}
	type slot struct {
		i       int
		planned time.Time
	}
	work := make(chan slot)
	var wg sync.WaitGroup
	for range job.Concurrency {
		wg.Go(func() {
			for s := range work {
				p.lateness[s.i] = time.Since(s.planned)
				t := s.i % len(job.Targets)
				if probe(t, &job.Targets[t]) {
					p.successes.Add(1)
				} else {
					p.failures.Add(1)
				}
			}
		})
	}
	interval := time.Duration(float64(time.Second) / job.Rate)
	start := time.Now()
	for i := range count {
		planned := start.Add(time.Duration(i) * interval)
		if d := time.Until(planned); d > 0 {
			time.Sleep(d)
		}
		work <- slot{i, planned}
	}
	close(work)
	wg.Wait()
	p.wall = time.Since(start)
	return p
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(q*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// Run runs the warm-up, then the measured phase between two readings of meter, and prints the
// report on standard output.
func Run(peer string, job Job, probe Probe, meter Meter) Report {
	if meter == nil {
		meter = SelfUsage
	}
	if job.Warmup > 0 {
		runPhase(job, job.Warmup, probe)
	}
	before, err := meter()
	if err != nil {
		Fail(err)
	}
	p := runPhase(job, job.Probes, probe)
	after, err := meter()
	if err != nil {
		Fail(err)
	}
	self, _ := SelfUsage()
	expected := 0
	for i := range job.Probes {
		if job.Targets[i%len(job.Targets)].Expect {
			expected++
		}
	}
	slices.Sort(p.lateness)
	r := Report{
		Peer: peer, Kind: job.Kind, Probes: job.Probes,
		Successes: p.successes.Load(), Failures: p.failures.Load(), ExpectedSuccesses: expected,
		CPUUserMs: after.UserMs - before.UserMs, CPUSysMs: after.SysMs - before.SysMs,
		MaxRssKiB: after.MaxRssKiB, WallMs: float64(p.wall) / float64(time.Millisecond),
		LatenessP50Ms: percentile(p.lateness, 0.50), LatenessP99Ms: percentile(p.lateness, 0.99),
		LatenessMaxMs: percentile(p.lateness, 1),
		ProcCPUUserMs: self.UserMs, ProcCPUSysMs: self.SysMs,
	}
	return r
}

// Print writes the report as one line of JSON.
func Print(r Report) {
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		Fail(err)
	}
}
