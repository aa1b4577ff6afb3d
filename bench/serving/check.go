package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// tolerance is how far apart two predictions of the same row may be.
const tolerance = 1e-5

// checkResult summarises the comparison of our predictions with the Python stack's.
type checkResult struct {
	Rows      int
	Identical int // rows whose answers are the same text
	MaxDiff   float64
}

// invoke posts a text/csv body and returns the answer, failing on anything but 200.
func invoke(ctx context.Context, url string, body []byte) ([]byte, error) {
	out, _, err := invokeHeader(ctx, url, body)
	return out, err
}

// invokeHeader is invoke that returns the answer's header too.
func invokeHeader(ctx context.Context, url string, body []byte) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s answered %s: %s", url, resp.Status, bytes.TrimSpace(out))
	}
	return out, resp.Header, nil
}

// sameAnswer fails unless srv answers body with the bytes and the header (but Date) ours
// answered: the bare handler's work must be what a client gets from ours.
func sameAnswer(ctx context.Context, srv *server, body, answer []byte, header http.Header) error {
	got, h, err := invokeHeader(ctx, srv.url, body)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, answer) {
		return fmt.Errorf("%s answers %q, ours %q", srv.name, got, answer)
	}
	want := header.Clone()
	h.Del("Date")
	want.Del("Date")
	if !maps.EqualFunc(h, want, slices.Equal) {
		return fmt.Errorf("%s answers with the header %v, ours with %v: make them the same", srv.name, h, want)
	}
	return nil
}

// predictions parses a text/csv answer: one value per line.
func predictions(answer []byte) ([]string, []float64, error) {
	lines := strings.Split(strings.TrimRight(string(answer), "\n"), "\n")
	vals := make([]float64, len(lines))
	for i, l := range lines {
		v, err := strconv.ParseFloat(strings.TrimSpace(l), 64)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d of the answer, %q, is not a number", i+1, l)
		}
		vals[i] = v
	}
	return lines, vals, nil
}

// comparePredictions sends every abalone row, 100 per request, to ours and to python and
// compares the answers row by row. It also checks both against what Python's xgboost is known
// to predict for the sample payload (abalone.ExpectedCSV), so that two equally wrong servers
// cannot pass.
func comparePredictions(ctx context.Context, ours, python *server, rows []abalone.Row) (checkResult, error) {
	res := checkResult{}
	for start := 0; start < len(rows); start += 100 {
		chunk := rows[start:min(start+100, len(rows))]
		body := abalone.FeaturesCSV(chunk)
		a, err := invoke(ctx, ours.url, body)
		if err != nil {
			return res, fmt.Errorf("ours: %w", err)
		}
		b, err := invoke(ctx, python.url, body)
		if err != nil {
			return res, fmt.Errorf("python: %w", err)
		}
		at, av, err := predictions(a)
		if err != nil {
			return res, fmt.Errorf("ours: %w", err)
		}
		bt, bv, err := predictions(b)
		if err != nil {
			return res, fmt.Errorf("python: %w", err)
		}
		if len(av) != len(chunk) || len(bv) != len(chunk) {
			return res, fmt.Errorf("rows %d-%d: ours answered %d values, python %d, for %d rows", start+1, start+len(chunk), len(av), len(bv), len(chunk))
		}
		for i := range chunk {
			d := math.Abs(av[i] - bv[i])
			if !(d <= tolerance) {
				return res, fmt.Errorf("row %d: ours predicts %s, python %s (difference %.3g > %g)", start+i+1, at[i], bt[i], d, tolerance)
			}
			res.MaxDiff = max(res.MaxDiff, d)
			if at[i] == bt[i] {
				res.Identical++
			}
			res.Rows++
		}
	}
	want, err := abalone.ExpectedCSV(modelVersion)
	if err != nil {
		return res, err
	}
	_, wv, err := predictions(want)
	if err != nil {
		return res, fmt.Errorf("abalone.ExpectedCSV: %w", err)
	}
	for _, srv := range []*server{ours, python} {
		got, err := invoke(ctx, srv.url, abalone.SampleCSV())
		if err != nil {
			return res, fmt.Errorf("%s: %w", srv.name, err)
		}
		_, gv, err := predictions(got)
		if err != nil {
			return res, fmt.Errorf("%s: %w", srv.name, err)
		}
		if len(gv) != len(wv) {
			return res, fmt.Errorf("%s answered %d values for the %d-row sample payload", srv.name, len(gv), len(wv))
		}
		for i := range wv {
			if d := math.Abs(gv[i] - wv[i]); !(d <= tolerance) {
				return res, fmt.Errorf("%s predicts %v for sample row %d; python xgboost 1.7.4 predicted %v", srv.name, gv[i], i+1, wv[i])
			}
		}
	}
	return res, nil
}
