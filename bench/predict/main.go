// Command predict measures the xgboost package's predictor, microseconds per row, against
// xgboost's own C++ predictor (Python's Booster.inplace_predict with one thread) on the same
// rows in the same run, when /usr/bin/python3 has xgboost.
//
//	go run ./bench/predict -model examples/abalone/model-v2/model.tar.gz -rows 100,10000 -data abalone
//	/usr/bin/python3 bench/predict/make_big_model.py /tmp/big.ubj
//	go run ./bench/predict -model /tmp/big.ubj -rows 100,10000
//
// The model is any file xgboost.Load reads, or a SageMaker model.tar.gz holding one. Rows are
// random (normal values, 5 % missing) unless -data names the abalone data set or a CSV file of
// numeric rows. Rounds alternate between the two predictors so that the noise of a shared
// machine falls on both; the medians and their ratio are printed. Before timing, the two
// predictions of every row are compared.
//
// It is a program, not a test: `go test ./...` never runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

type options struct {
	model   string
	data    string
	rows    []int
	rounds  int
	measure time.Duration
	python  string
}

func main() {
	var o options
	var rows string
	flag.StringVar(&o.model, "model", "", "model file: XGBoost JSON/UBJSON (or any format xgboost.Load reads), or a SageMaker model.tar.gz")
	flag.StringVar(&rows, "rows", "100,10000", "comma-separated batch sizes: rows per PredictRows / inplace_predict call")
	flag.StringVar(&o.data, "data", "random", "rows to predict: random (normal values, 5% missing), abalone (the example data set), or a CSV file of numeric rows")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds per batch size, ours and python taking turns; medians are reported")
	flag.DurationVar(&o.measure, "measure", time.Second, "time spent calling each predictor per round")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "python with xgboost for the baseline; empty skips it")
	flag.Parse()
	var err error
	if o.rows, err = parseRows(rows); err != nil || o.model == "" || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "predict bench: need -model FILE, -rows N[,N...] of positive counts and -rounds >= 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "predict bench:", err)
		os.Exit(1)
	}
}

func parseRows(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("rows %q: want positive counts", f)
		}
		out = append(out, n)
	}
	return out, nil
}
