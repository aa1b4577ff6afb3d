// Command modelserver is a small bring-your-own model server for tests: it honours SageMaker's
// serving contract as sagedeploy local passes it (SAGEMAKER_BIND_TO_PORT, SM_MODEL_DIR) and
// answers each invocation with the model file it read and the request it got.
//
// MODEL_SERVER_MODE changes its behaviour: "exit" exits at once with status 3, "unhealthy"
// answers GET /ping with 503, "child" starts a long sleep child in its process group and
// prints its pid, "abrupt" dies on SIGTERM without finishing requests. MODEL_SERVER_DELAY delays every answer. A request body "fail" gets a 400; "sleep:DURATION" answers after a delay;
// "sicken" makes every later GET /ping answer 500 while invocations still work; "fifo:PATH"
// answers once the named pipe PATH has been opened for writing and closed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("SAGEMAKER_BIND_TO_PORT")
	dir := os.Getenv("SM_MODEL_DIR")
	mode := os.Getenv("MODEL_SERVER_MODE")
	fmt.Printf("modelserver: port=%s PORT=%s model dir=%s mode=%q\n", port, os.Getenv("PORT"), dir, mode)
	if port == "" || dir == "" {
		fmt.Fprintln(os.Stderr, "modelserver: SAGEMAKER_BIND_TO_PORT and SM_MODEL_DIR must be set")
		os.Exit(2)
	}
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "modelserver: cannot load the model, giving up")
		os.Exit(3)
	}
	model := "none"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil {
				model = strings.TrimSpace(string(b))
				break
			}
		}
	}
	if mode == "child" {
		c := exec.Command("sleep", "1000")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "modelserver: start child:", err)
			os.Exit(4)
		}
		fmt.Printf("modelserver: child pid %d\n", c.Process.Pid)
	}

	var sick atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		if mode == "unhealthy" || sick.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b := string(raw)
		if b == "sicken" {
			sick.Store(true)
		}
		if b == "fail" {
			http.Error(w, "bad input: fail", http.StatusBadRequest)
			return
		}
		if d, err := time.ParseDuration(os.Getenv("MODEL_SERVER_DELAY")); err == nil {
			time.Sleep(d)
		}
		if fifo, ok := strings.CutPrefix(b, "fifo:"); ok {
			// Held until the test opens the named pipe for writing (so it knows this request is
			// in flight) and closes it (to release the answer).
			if f, err := os.Open(fifo); err == nil {
				io.Copy(io.Discard, f)
				f.Close()
			}
		}
		if d, ok := strings.CutPrefix(b, "sleep:"); ok {
			if dur, err := time.ParseDuration(d); err == nil {
				time.Sleep(dur)
			}
		}
		if ca := r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"); ca != "" {
			w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", "echo:"+ca)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"model":        model,
			"body":         b,
			"content_type": r.Header.Get("Content-Type"),
			"accept":       r.Header.Get("Accept"),
			"pid":          os.Getpid(),
			"env":          os.Getenv("MODEL_GREETING"),
			"endpoint":     os.Getenv("SAGEMAKER_ENDPOINT_NAME"),
			"variant":      os.Getenv("SAGEMAKER_VARIANT_NAME"),
		})
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux}
	ctx, stop := context.WithCancel(context.Background())
	if mode != "abrupt" { // abrupt: SIGTERM kills at once, in-flight requests or not
		ctx, stop = signal.NotifyContext(context.Background(), syscall.SIGTERM)
	}
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "modelserver:", err)
		os.Exit(1)
	}
	fmt.Println("modelserver: stopped")
}
