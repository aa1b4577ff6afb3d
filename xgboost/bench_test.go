package xgboost_test

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/xgboost"
)

// The abalone v2 model (80 trees of depth ≤ 6) is the one the local SageMaker serves in the
// quickstart. ns/row is the figure to compare; v1 (5 trees of depth 2) is the baseline.
func BenchmarkPredict(b *testing.B) {
	rows := inputs(b, "all10", "full")
	for _, v := range []int{1, 2} {
		m := mustLoad(b, abaloneModel(b, v))
		name := map[int]string{1: "v1", 2: "v2"}[v]
		for _, n := range []int{1, 100, len(rows)} {
			b.Run(name+"/rows="+strconv.Itoa(n), func(b *testing.B) {
				buf := make([]float32, 0, n)
				b.ReportAllocs()
				for b.Loop() {
					buf = buf[:0]
					for _, r := range rows[:n] {
						buf = m.PredictTo(buf, r)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
		}
	}
	m := mustLoad(b, abaloneModel(b, 2))
	b.Run("v2/Predict-allocating", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.Predict(rows[0])
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	for _, name := range []string{"squarederror.json", "squarederror.ubj", "formats/multi.legacy.bin",
		"formats/multi.booster-p5.pkl", "formats/multi.sklearn.joblib", "multi_softprob.ubj"} {
		data := readFile(b, "testdata/"+name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := xgboost.Load(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	data := abaloneModel(b, 2)
	b.Run("abalone-v2.ubj", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := xgboost.Load(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPredictRows compares walking row by row (PredictTo) with PredictRows on the abalone
// v2 model and, when XGBOOST_BENCH_MODEL names one (bench/predict/make_big_model.py writes the
// 1000-tree depth-8 case), on a large model over random rows with some values missing.
func BenchmarkPredictRows(b *testing.B) {
	type benchCase struct {
		name   string
		model  *xgboost.Model
		rows   []float32
		stride int
	}
	abaloneRows := inputs(b, "all10", "full")
	cases := []benchCase{{"abalone-v2", mustLoad(b, abaloneModel(b, 2)), flatten(abaloneRows), len(abaloneRows[0])}}
	if path := os.Getenv("XGBOOST_BENCH_MODEL"); path != "" {
		m := mustLoad(b, readFile(b, path))
		cases = append(cases, benchCase{"big", m, randomRows(10000, m.NumFeatures()), m.NumFeatures()})
	}
	for _, c := range cases {
		for _, n := range []int{1, 100, 1000, 10000} {
			if n*c.stride > len(c.rows) {
				continue
			}
			rows := c.rows[:n*c.stride]
			dst := make([]float32, 0, n*c.model.OutputSize())
			b.Run(c.name+"/rows="+strconv.Itoa(n)+"/by-row", func(b *testing.B) {
				for b.Loop() {
					dst = dst[:0]
					for r := range n {
						dst = c.model.PredictTo(dst, rows[r*c.stride:(r+1)*c.stride])
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
			b.Run(c.name+"/rows="+strconv.Itoa(n)+"/PredictRows", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					dst = c.model.PredictRows(dst[:0], rows, c.stride)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
		}
	}
}

func flatten(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// randomRows are n rows of normal values with 5 % missing, like the big model's training data.
func randomRows(n, width int) []float32 {
	rng := rand.New(rand.NewPCG(16, 17))
	out := make([]float32, n*width)
	for i := range out {
		if rng.IntN(20) == 0 {
			out[i] = float32(math.NaN())
		} else {
			out[i] = float32(rng.NormFloat64())
		}
	}
	return out
}

// BenchmarkColdWalk predicts one abalone row with the v2 model after touching 1.5 MB of other
// memory, more than the core's L2 cache, as a server's one-row request finds the model after
// the network stack, the HTTP server and the load generator ran. Only the prediction is timed
// (cold-ns/op; the clock reads add ~50 ns). Against a warm walk (BenchmarkPredict/v2/rows=1)
// it shows what the cache costs a walk: an 8-byte walkNode measured no faster here (1.31 µs
// against 1.27 for 16-byte nodes, medians of 8 runs), so nodes stayed at 16 bytes, while
// walking sixteen trees at a time (marginDense) took it from ~1.4 to ~1.1 µs.
func BenchmarkColdWalk(b *testing.B) {
	m := mustLoad(b, abaloneModel(b, 2))
	row := inputs(b, "all10", "full")[0]
	other := make([]byte, 1536<<10)
	dst := make([]float32, 0, 1)
	var cold time.Duration
	for b.Loop() {
		for i := 0; i < len(other); i += 64 {
			other[i]++
		}
		t0 := time.Now()
		dst = m.PredictTo(dst[:0], row)
		cold += time.Since(t0)
	}
	b.ReportMetric(float64(cold.Nanoseconds())/float64(b.N), "cold-ns/op")
}
