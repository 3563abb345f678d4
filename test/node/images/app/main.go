// The test app of the real-node tests (test/node/): one static binary in a scratch image.
//
//	app [serve]      serves HTTP (/healthz), a TCP port and gRPC health (grpc.health.v1)
//	app check        exec probe command: exits 0 while healthy, else with the failure's exit code
//	app fail [code]  switches every check to failing (exit code 1 unless given, 1-255)
//	app recover      switches them back to healthy
//
// The health state is one file (APP_STATE_DIR, default /tmp/app): absent means healthy, else it
// holds the exit code. HTTP can switch it too: POST /fail?code=N and POST /recover. While it is
// failing /healthz answers 503, the TCP port is closed and gRPC health says NOT_SERVING.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func stateFile() string {
	dir := os.Getenv("APP_STATE_DIR")
	if dir == "" {
		dir = "/tmp/app"
	}
	return filepath.Join(dir, "fail")
}

// failure returns 0 while healthy, else the exit code the checks fail with.
func failure() int {
	b, err := os.ReadFile(stateFile())
	if err != nil {
		return 0
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || code < 1 || code > 255 {
		return 1
	}
	return code
}

func setFailure(code int) error {
	if code == 0 {
		if err := os.Remove(stateFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if code < 1 || code > 255 {
		return fmt.Errorf("exit code %d is not in 1-255", code)
	}
	if err := os.MkdirAll(filepath.Dir(stateFile()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(stateFile(), []byte(strconv.Itoa(code)), 0o644)
}

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		serve()
	case "check":
		if code := failure(); code != 0 {
			fmt.Printf("failing (exit code %d)\n", code)
			os.Exit(code)
		}
		fmt.Println("ok")
	case "fail":
		code := 1
		if len(args) > 1 {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				fatal(fmt.Errorf("exit code %q is not a number", args[1]))
			}
			code = n
		}
		if err := setFailure(code); err != nil {
			fatal(err)
		}
	case "recover":
		if err := setFailure(0); err != nil {
			fatal(err)
		}
	default:
		fatal(fmt.Errorf("unknown command %q (serve, check, fail [code], recover)", cmd))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "app:", err)
	os.Exit(2)
}

func port(env string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return def
}

func serve() {
	httpPort, tcpPort, grpcPort := port("HTTP_PORT", 8080), port("TCP_PORT", 8081), port("GRPC_PORT", 8082)
	healthSrv := health.NewServer()
	grpcSrv := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, healthSrv)
	gl, err := net.Listen("tcp", fmt.Sprintf(":%d", grpcPort))
	if err != nil {
		fatal(err)
	}
	go func() { fatal(grpcSrv.Serve(gl)) }()
	tcp := &tcpListener{port: tcpPort}
	// Every port listens before the HTTP one does, so that a readiness probe on HTTP means all are up.
	if failure() == 0 {
		tcp.open()
	}
	go watch(healthSrv, tcp)
	fmt.Printf("serving HTTP :%d, TCP :%d, gRPC :%d\n", httpPort, tcpPort, grpcPort)
	fatal(http.ListenAndServe(fmt.Sprintf(":%d", httpPort), routes()))
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if code := failure(); code != 0 {
			http.Error(w, fmt.Sprintf("failing (exit code %d)", code), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		code := 1
		if q := r.URL.Query().Get("code"); q != "" {
			n, err := strconv.Atoi(q)
			if err != nil {
				http.Error(w, "code is not a number", http.StatusBadRequest)
				return
			}
			code = n
		}
		if err := setFailure(code); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "failing (exit code %d)\n", code)
	})
	mux.HandleFunc("POST /recover", func(w http.ResponseWriter, _ *http.Request) {
		if err := setFailure(0); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "readygate test app on %s\n", host)
	})
	return mux
}

// watch follows the state file: gRPC health status, and the TCP port open only while healthy.
func watch(h *health.Server, tcp *tcpListener) {
	for {
		if failure() == 0 {
			h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			tcp.open()
		} else {
			h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
			tcp.close()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tcpListener accepts connections, writes "ok" and closes them, while open.
type tcpListener struct {
	port int
	mu   sync.Mutex
	l    net.Listener
}

func (t *tcpListener) open() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.l != nil {
		return
	}
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", t.port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "app: tcp:", err)
		return
	}
	t.l = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("ok\n"))
			_ = c.Close()
		}
	}()
}

func (t *tcpListener) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.l != nil {
		_ = t.l.Close()
		t.l = nil
	}
}
