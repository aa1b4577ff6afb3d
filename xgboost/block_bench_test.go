package xgboost

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

// threadCPU is the calling thread's CPU time in nanoseconds (Linux; elsewhere 0).
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkWalkOrder compares the orders predictRows can walk in, on the abalone v2 model (80
// trees of depth ≤ 6) and, when XGBOOST_BENCH_MODEL names one (bench/predict/make_big_model.py
// writes the 1000-tree depth-8 case), a large model; rows are random, 5 % missing. It is what
// byTreeFrom and order are chosen by.
func BenchmarkWalkOrder(b *testing.B) {
	models := map[string]string{"abalone-v2": "../examples/abalone/model-v2/model.tar.gz"}
	if path := os.Getenv("XGBOOST_BENCH_MODEL"); path != "" {
		models["big"] = path
	}
	for name, path := range models {
		m := loadBenchModel(b, path)
		stride := m.numFeature
		rng := rand.New(rand.NewPCG(16, 17))
		rows := make([]float32, 10000*stride)
		for i := range rows {
			if rng.IntN(20) == 0 {
				rows[i] = float32(math.NaN())
			} else {
				rows[i] = float32(rng.NormFloat64())
			}
		}
		for _, n := range []int{8, 100, 1000, 10000} {
			for _, order := range []walkOrder{byRow, byTreeBlocks, byTree} {
				dst := make([]float32, 0, n*m.OutputSize())
				b.Run(name+"/rows="+strconv.Itoa(n)+"/"+[]string{"byRow", "byTreeBlocks", "byTree"}[order], func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					cpu0 := threadCPU()
					for b.Loop() {
						dst = m.predictRows(dst[:0], rows[:n*stride], stride, order)
					}
					// On a shared machine the thread's CPU time is steadier than the wall time.
					b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N*n), "cpu-ns/row")
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
				})
			}
		}
	}
}

func loadBenchModel(b *testing.B, path string) *Model {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		tr := tar.NewReader(zr)
		if _, err := tr.Next(); err != nil {
			b.Fatal(err)
		}
		if data, err = io.ReadAll(tr); err != nil {
			b.Fatal(err)
		}
	}
	m, err := Load(data)
	if err != nil {
		b.Fatal(err)
	}
	return m
}
