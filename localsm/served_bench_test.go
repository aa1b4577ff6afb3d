package localsm_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// BenchmarkEdgeServed is BenchmarkEdgeInvoke's comparison with net/http's server around both
// handlers, as `sagedeploy local` and bench/serving's bare server run them (ReadHeaderTimeout
// included), on a keep-alive connection held in memory: request parsing, the response header's
// copy, sorting and writing, the Date header, the connection's background read, all but the
// system calls and the load generator, which cost both servers the same. Its ns/op is the
// server's CPU per request that bench/serving's figures vary around on a busy machine.
//
//	go test -run '^$' -bench EdgeServed -benchmem ./localsm
func BenchmarkEdgeServed(b *testing.B) {
	// As `sagedeploy local` runs it: logging at info (failed invocations), to a text handler.
	srv, name := benchEndpoint(b, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	rows, err := abalone.Rows()
	if err != nil {
		b.Fatal(err)
	}
	body := abalone.FeaturesCSV(rows[:1])
	path := "/endpoints/" + name + "/invocations"
	answer := invokeOnce(b, srv.Handler(), path, body)
	// wrk's request in bench/serving.
	req := []byte("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:4570\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	b.Run("ours", func(b *testing.B) { benchServed(b, srv.Handler(), req, answer) })
	b.Run("bare", func(b *testing.B) { benchServed(b, bareHandler(answer), req, answer) })
}

// benchServed serves b.N copies of req, one after another's answer, with h under net/http.
func benchServed(b *testing.B, h http.Handler, req, answer []byte) {
	conn := newMemConn(req, answer)
	server := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	ln := &memListener{conn: conn, closed: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	defer func() {
		server.Close()
		<-served
	}()
	if err := conn.expect(1); err != nil { // warm up: one answer, checked
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	if err := conn.expect(b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	// The process's CPU time counts the garbage collector's and the background read's
	// goroutines on the other core, which the wall time per answer may hide.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time this process has used, in nanoseconds (0 where unknown).
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// memConn is a client connection in memory that sends one request at a time and the next when
// the answer to the last has been written, as each of wrk's connections does. A read between
// requests waits, as the server's background read waits on a socket, until a read deadline in
// the past (net/http's way of ending that read) or the next request.
type memConn struct {
	req, answer []byte

	mu       sync.Mutex
	wake     sync.Cond
	pending  []byte // what Read has left of the current request
	left     int    // requests still to send
	deadline time.Time
	err      error         // a wrong answer
	done     chan struct{} // closed when left reaches 0 and the last answer is in, or on err
}

func newMemConn(req, answer []byte) *memConn {
	c := &memConn{req: req, answer: answer}
	c.wake.L = &c.mu
	return c
}

// expect sends n requests and waits for their answers.
func (c *memConn) expect(n int) error {
	c.mu.Lock()
	c.left, c.pending, c.done = n-1, c.req, make(chan struct{})
	done := c.done
	c.wake.Broadcast()
	c.mu.Unlock()
	<-done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) == 0 {
		if !c.deadline.IsZero() && c.deadline.Before(time.Now()) {
			return 0, timeoutError{}
		}
		c.wake.Wait()
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// Write takes one whole answer (net/http writes a small one in one go) and sends the next
// request.
func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && (!bytes.HasPrefix(p, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(p, c.answer)) {
		c.err = errors.New("unexpected answer: " + string(p))
	}
	switch {
	case c.err != nil || c.left == 0:
		if c.done != nil {
			close(c.done)
			c.done = nil
		}
	default:
		c.left--
		c.pending = c.req
		c.wake.Broadcast()
	}
	return len(p), nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.wake.Broadcast()
	c.mu.Unlock()
	return nil
}

func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4570} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// timeoutError is what a read past its deadline returns, as net's does.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// memListener accepts its one connection, then waits until closed.
type memListener struct {
	conn     net.Conn
	accepted bool
	once     sync.Once
	closed   chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	if !l.accepted {
		l.accepted = true
		return l.conn, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.conn.LocalAddr() }

var _ io.ReadWriter = (*memConn)(nil)
