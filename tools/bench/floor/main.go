// floor is the physical cost of a probe on this machine: for TCP, connect and close with
// SO_LINGER 0 (an RST, no TIME_WAIT); for HTTP, the least a correct HTTP/1.1 probe can do on the
// same kind of socket: write one fixed GET, read the reply up to 10 KiB until the server closes,
// parse the status code, close. No HTTP library, no per-probe allocation beyond the socket. It
// reads a job as JSON (see internal/loop) and prints a JSON report.
package main

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"readygate.dev/tools/bench/internal/loop"
)

func main() {
	job := loop.ParseFlags()
	timeout := time.Duration(job.TimeoutMs) * time.Millisecond
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
			})
		},
	}
	addrs := make([]string, len(job.Targets))
	requests := make([][]byte, len(job.Targets))
	for i, t := range job.Targets {
		addrs[i] = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
		requests[i] = []byte("GET " + t.Path + " HTTP/1.1\r\nHost: " + addrs[i] +
			"\r\nUser-Agent: floor\r\nAccept: */*\r\nConnection: close\r\n\r\n")
	}
	var run loop.Probe
	switch job.Kind {
	case "tcp":
		run = func(i int, _ *loop.Target) bool {
			c, err := dialer.Dial("tcp", addrs[i])
			if err != nil {
				return false
			}
			_ = c.Close()
			return true
		}
	case "http":
		run = func(i int, _ *loop.Target) bool {
			c, err := dialer.Dial("tcp", addrs[i])
			if err != nil {
				return false
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(timeout))
			if _, err := c.Write(requests[i]); err != nil {
				return false
			}
			var buf [10 << 10]byte
			n := 0
			for n < len(buf) {
				m, err := c.Read(buf[n:])
				n += m
				if err == io.EOF {
					break
				}
				if err != nil {
					return false
				}
			}
			// "HTTP/1.1 200 ..."
			line := buf[:n]
			if !bytes.HasPrefix(line, []byte("HTTP/1.")) || n < 12 {
				return false
			}
			code, err := strconv.Atoi(string(line[9:12]))
			return err == nil && code >= 200 && code < 400
		}
	}
	loop.Print(loop.Run("floor", job, run, nil))
}
