package xgboost_test

import (
	"strconv"
	"testing"

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
