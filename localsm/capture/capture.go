// Package capture writes SageMaker data capture: the invocations an endpoint configuration's
// DataCaptureConfig asks for, as JSON Lines files in S3, in SageMaker's layout
// (DEST/ENDPOINT/VARIANT/yyyy/mm/dd/hh/MM-SS-mmm-UUID.jsonl) and record shape, so that tools
// that read SageMaker's capture files (Model Monitor, notebooks) read these. The serving path
// only copies a sampled request into a queue; encoding and writing happen in the background,
// on an interval and on Close.
package capture

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Options configure a Writer.
type Options struct {
	// Objects stores the capture files; required.
	Objects spec.Objects
	// FlushInterval is how often buffered records are written out; default 10 s. SageMaker
	// writes a file every few minutes; a shorter wait suits a local endpoint being watched.
	FlushInterval time.Duration
	// QueueSize bounds the records waiting to be encoded; past it records are dropped (and
	// counted) rather than slowing invocations down. Default 4096.
	QueueSize int
	// MaxFileBytes starts a new file once a buffered one reaches it; default 4 MiB.
	MaxFileBytes int
	Logger       *slog.Logger
}

// Event is one captured invocation. Input and Output must not be changed after Record.
type Event struct {
	Config     *spec.DataCapture
	Endpoint   string
	Variant    string
	Time       time.Time
	InputType  string
	Input      []byte
	OutputType string
	Output     []byte
	// InferenceID is the request's X-Amzn-SageMaker-Inference-Id, if it had one.
	InferenceID string
}

// Writer buffers captured invocations and writes them to S3.
type Writer struct {
	opts    Options
	log     *slog.Logger
	in      chan Event
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Int64
	once    sync.Once
}

// New starts a Writer; Close flushes and stops it.
func New(opts Options) *Writer {
	opts.FlushInterval = cmp.Or(opts.FlushInterval, 10*time.Second)
	opts.QueueSize = cmp.Or(opts.QueueSize, 4096)
	opts.MaxFileBytes = cmp.Or(opts.MaxFileBytes, 4<<20)
	w := &Writer{opts: opts, log: cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)),
		in: make(chan Event, opts.QueueSize), flushes: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Sampled reports whether an invocation is to be captured under cfg: capture is on and the
// invocation falls within the sampling percentage.
func Sampled(cfg *spec.DataCapture) bool {
	if cfg == nil || !cfg.Enabled || cfg.SamplingPercentage <= 0 {
		return false
	}
	return cfg.SamplingPercentage >= 100 || rand.IntN(100) < cfg.SamplingPercentage
}

// Record queues ev without blocking; it reports false when the queue is full and ev was
// dropped.
func (w *Writer) Record(ev Event) bool {
	select {
	case w.in <- ev:
		return true
	default:
		if n := w.dropped.Add(1); n == 1 || n%1000 == 0 {
			w.log.Warn("data capture queue full; captured invocations dropped", "endpoint", ev.Endpoint, "dropped", n)
		}
		return false
	}
}

// Flush writes out everything recorded so far, or gives up when ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case w.flushes <- ack:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush data capture: %w", ctx.Err())
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush data capture: %w", ctx.Err())
	}
}

// Close writes out what is buffered and stops the Writer. Records arriving after Close are
// dropped.
func (w *Writer) Close(ctx context.Context) error {
	w.once.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close data capture: %w", ctx.Err())
	}
}

// fileKey is one capture file being filled: records of one variant, destination and hour.
type fileKey struct {
	dest, endpoint, variant string
	hour                    time.Time
}

type file struct {
	first time.Time
	buf   bytes.Buffer
}

func (w *Writer) run() {
	defer close(w.done)
	files := map[fileKey]*file{}
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case ev := <-w.in:
			w.add(files, ev)
		case <-tick.C:
			w.writeAll(files)
		case ack := <-w.flushes:
			w.drain(files)
			w.writeAll(files)
			close(ack)
		case <-w.stop:
			w.drain(files)
			w.writeAll(files)
			return
		}
	}
}

// drain takes every queued record into files.
func (w *Writer) drain(files map[fileKey]*file) {
	for {
		select {
		case ev := <-w.in:
			w.add(files, ev)
		default:
			return
		}
	}
}

func (w *Writer) add(files map[fileKey]*file, ev Event) {
	t := ev.Time.UTC()
	k := fileKey{dest: strings.TrimRight(ev.Config.DestinationS3URI, "/"), endpoint: ev.Endpoint, variant: ev.Variant,
		hour: t.Truncate(time.Hour)}
	f := files[k]
	if f == nil {
		f = &file{first: t}
		files[k] = f
	}
	line, err := json.Marshal(record(ev, t))
	if err != nil {
		w.log.Error("encode captured invocation", "endpoint", ev.Endpoint, "error", err)
		return
	}
	f.buf.Write(line)
	f.buf.WriteByte('\n')
	if f.buf.Len() >= w.opts.MaxFileBytes {
		w.write(k, f)
		delete(files, k)
	}
}

func (w *Writer) writeAll(files map[fileKey]*file) {
	keys := make([]fileKey, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	// Oldest first, so that a reader listing the prefix sees files in the order they filled.
	slices.SortFunc(keys, func(a, b fileKey) int { return files[a].first.Compare(files[b].first) })
	for _, k := range keys {
		w.write(k, files[k])
		delete(files, k)
	}
}

func (w *Writer) write(k fileKey, f *file) {
	url := FileURL(k.dest, k.endpoint, k.variant, f.first, uuid.NewString())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.opts.Objects.Put(ctx, url, f.buf.Bytes(), "application/jsonl"); err != nil {
		w.log.Error("write data capture file; its records are lost", "endpoint", k.endpoint, "variant", k.variant,
			"url", url, "error", err)
	}
}

// FileURL is where SageMaker puts a capture file whose first record was captured at t:
// DEST/ENDPOINT/VARIANT/yyyy/mm/dd/hh/MM-SS-mmm-ID.jsonl, in UTC.
func FileURL(dest, endpoint, variant string, t time.Time, id string) string {
	t = t.UTC()
	return fmt.Sprintf("%s/%s/%s/%s/%02d-%02d-%03d-%s.jsonl", strings.TrimRight(dest, "/"), endpoint, variant,
		t.Format("2006/01/02/15"), t.Minute(), t.Second(), t.Nanosecond()/int(time.Millisecond), id)
}

// Record is one line of a capture file, as SageMaker writes it.
type Record struct {
	CaptureData   CaptureData   `json:"captureData"`
	EventMetadata EventMetadata `json:"eventMetadata"`
	EventVersion  string        `json:"eventVersion"`
}

// CaptureData holds what was captured: the request, the answer or both.
type CaptureData struct {
	EndpointInput  *Payload `json:"endpointInput,omitempty"`
	EndpointOutput *Payload `json:"endpointOutput,omitempty"`
}

// Payload is one captured body. Encoding is CSV or JSON (Data is the text) or BASE64.
type Payload struct {
	ObservedContentType string `json:"observedContentType"`
	Mode                string `json:"mode"`
	Data                string `json:"data"`
	Encoding            string `json:"encoding"`
}

// EventMetadata identifies a captured invocation.
type EventMetadata struct {
	EventID       string `json:"eventId"`
	InferenceID   string `json:"inferenceId,omitempty"`
	InferenceTime string `json:"inferenceTime"`
}

func record(ev Event, t time.Time) Record {
	rec := Record{EventVersion: "0", EventMetadata: EventMetadata{EventID: uuid.NewString(), InferenceID: ev.InferenceID,
		InferenceTime: t.Format("2006-01-02T15:04:05Z")}}
	if ev.Config.Input {
		rec.CaptureData.EndpointInput = payload(ev.Config, "INPUT", ev.InputType, ev.Input)
	}
	if ev.Config.Output {
		rec.CaptureData.EndpointOutput = payload(ev.Config, "OUTPUT", ev.OutputType, ev.Output)
	}
	return rec
}

// payload encodes a body as SageMaker does: content types the configuration lists as CSV or
// JSON are kept as text, anything else (and everything when it lists none) as base64.
func payload(cfg *spec.DataCapture, mode, contentType string, body []byte) *Payload {
	p := &Payload{ObservedContentType: contentType, Mode: mode}
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		media = strings.TrimSpace(contentType)
	}
	switch {
	case listed(cfg.CSVContentTypes, media):
		p.Encoding, p.Data = "CSV", string(body)
	case listed(cfg.JSONContentTypes, media):
		p.Encoding, p.Data = "JSON", string(body)
	default:
		p.Encoding, p.Data = "BASE64", base64.StdEncoding.EncodeToString(body)
	}
	return p
}

func listed(types []string, media string) bool {
	return media != "" && slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, media) })
}
