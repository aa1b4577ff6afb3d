package capture_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/capture"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// memObjects keeps written objects in memory; Put fails for URLs under failPrefix.
type memObjects struct {
	mu         sync.Mutex
	objs       map[string][]byte
	failPrefix string
}

func (m *memObjects) Put(ctx context.Context, url string, body []byte, contentType string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPrefix != "" && strings.HasPrefix(url, m.failPrefix) {
		return errors.New("bucket does not exist")
	}
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[url] = bytes.Clone(body)
	return nil
}

func (m *memObjects) Get(ctx context.Context, url string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[url]
	if !ok {
		return nil, fmt.Errorf("no object %s", url)
	}
	return b, nil
}

func (m *memObjects) records(t *testing.T) map[string][]capture.Record {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]capture.Record{}
	for url, b := range m.objs {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var r capture.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %q: %v", url, sc.Text(), err)
			}
			out[url] = append(out[url], r)
		}
	}
	return out
}

func config(dest string) *spec.DataCapture {
	return &spec.DataCapture{Enabled: true, SamplingPercentage: 100, DestinationS3URI: dest, Input: true, Output: true,
		CSVContentTypes: []string{"text/csv"}, JSONContentTypes: []string{"application/json"}}
}

// TestFileURL: SageMaker's layout, in UTC, with minutes, seconds and milliseconds leading the
// file name.
func TestFileURL(t *testing.T) {
	at := time.Date(2020, 3, 11, 13, 32, 18, 648_000_000, time.FixedZone("CET", 3600))
	got := capture.FileURL("s3://bucket/prefix/", "churn", "AllTraffic", at, "cee08c3a-02ce-4790-b8ba-3173cfc12813")
	want := "s3://bucket/prefix/churn/AllTraffic/2020/03/11/12/32-18-648-cee08c3a-02ce-4790-b8ba-3173cfc12813.jsonl"
	if got != want {
		t.Errorf("FileURL = %s, want %s", got, want)
	}
}

// TestSampled: 0% captures nothing, 100% everything, a share in between about that share, and a
// disabled capture nothing.
func TestSampled(t *testing.T) {
	count := func(cfg *spec.DataCapture) int {
		n := 0
		for range 10000 {
			if capture.Sampled(cfg) {
				n++
			}
		}
		return n
	}
	cfg := config("s3://b")
	if n := count(cfg); n != 10000 {
		t.Errorf("100%%: %d of 10000 captured", n)
	}
	cfg.SamplingPercentage = 0
	if n := count(cfg); n != 0 {
		t.Errorf("0%%: %d of 10000 captured", n)
	}
	cfg.SamplingPercentage = 30
	// The chance of falling outside 2500-3500 is below one in 10^25.
	if n := count(cfg); n < 2500 || n > 3500 {
		t.Errorf("30%%: %d of 10000 captured", n)
	}
	cfg.SamplingPercentage, cfg.Enabled = 100, false
	if n := count(cfg); n != 0 {
		t.Errorf("disabled: %d of 10000 captured", n)
	}
}

// TestWriterEncodesAndFlushes: records are grouped by variant into files, encoded CSV, JSON or
// BASE64 by content type, and written on Flush; Close writes what is left.
func TestWriterEncodesAndFlushes(t *testing.T) {
	objs := &memObjects{}
	w := capture.New(capture.Options{Objects: objs, FlushInterval: time.Hour})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := config("s3://b/cap")
	inputOnly := *cfg
	inputOnly.Output = false
	w.Record(capture.Event{Config: cfg, Endpoint: "ep", Variant: "A", Time: at, InputType: "text/csv", Input: []byte("1,2\n"),
		OutputType: "application/json; charset=utf-8", Output: []byte(`{"p":1}`), InferenceID: "req-1"})
	w.Record(capture.Event{Config: &inputOnly, Endpoint: "ep", Variant: "B", Time: at, InputType: "application/x-npy", Input: []byte{0, 1, 2}})
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := objs.records(t)
	if len(recs) != 2 {
		t.Fatalf("wrote %d files, want one per variant: %v", len(recs), recs)
	}
	for url, rs := range recs {
		r := rs[0]
		switch {
		case strings.HasPrefix(url, "s3://b/cap/ep/A/2026/01/02/03/04-05-000-"):
			in, out := r.CaptureData.EndpointInput, r.CaptureData.EndpointOutput
			if in == nil || in.Encoding != "CSV" || in.Data != "1,2\n" || in.Mode != "INPUT" || out == nil || out.Encoding != "JSON" ||
				out.Data != `{"p":1}` || out.Mode != "OUTPUT" || out.ObservedContentType != "application/json; charset=utf-8" {
				t.Errorf("variant A record %+v / %+v", in, out)
			}
			if r.EventMetadata.InferenceID != "req-1" || r.EventMetadata.InferenceTime != "2026-01-02T03:04:05Z" || r.EventVersion != "0" || r.EventMetadata.EventID == "" {
				t.Errorf("variant A metadata %+v, version %q", r.EventMetadata, r.EventVersion)
			}
		case strings.HasPrefix(url, "s3://b/cap/ep/B/"):
			in := r.CaptureData.EndpointInput
			if in == nil || in.Encoding != "BASE64" || in.Data != base64.StdEncoding.EncodeToString([]byte{0, 1, 2}) || r.CaptureData.EndpointOutput != nil {
				t.Errorf("variant B record %+v / %+v, want BASE64 input only", in, r.CaptureData.EndpointOutput)
			}
		default:
			t.Errorf("unexpected file %s", url)
		}
	}

	w.Record(capture.Event{Config: cfg, Endpoint: "ep", Variant: "A", Time: at.Add(time.Hour), InputType: "text/csv", Input: []byte("3\n")})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(objs.records(t)); n != 3 {
		t.Errorf("after Close %d files, want the buffered record written to a third", n)
	}
}

// TestWriterWritesOnItsInterval: without Flush, records reach S3 on the flush interval.
func TestWriterWritesOnItsInterval(t *testing.T) {
	objs := &memObjects{}
	w := capture.New(capture.Options{Objects: objs, FlushInterval: 10 * time.Millisecond})
	defer w.Close(context.Background())
	w.Record(capture.Event{Config: config("s3://b"), Endpoint: "ep", Variant: "A", Time: time.Now(), InputType: "text/csv", Input: []byte("1")})
	deadline := time.Now().Add(10 * time.Second)
	for len(objs.records(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no capture file written within 10s of a 10ms flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriterDropsWhenFull: a full queue drops records instead of blocking the caller.
func TestWriterDropsWhenFull(t *testing.T) {
	objs := &memObjects{failPrefix: "s3://missing"}
	w := capture.New(capture.Options{Objects: objs, FlushInterval: time.Hour, QueueSize: 1, MaxFileBytes: 1})
	defer w.Close(context.Background())
	dropped := false
	for range 10000 {
		if !w.Record(capture.Event{Config: config("s3://missing"), Endpoint: "ep", Variant: "A", Time: time.Now()}) {
			dropped = true
			break
		}
	}
	if !dropped {
		t.Error("10000 records into a queue of 1 were all accepted")
	}
}
