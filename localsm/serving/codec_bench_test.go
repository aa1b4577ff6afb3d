package serving

import (
	"context"
	"strconv"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// BenchmarkXGBoostInvoke is the model server's share of an invocation of the abalone v2 model
// (parse the text/csv body, predict, write the text/csv answer), without HTTP: what the
// one-row path adds to a bare handler. allocs/op must stay 0.
func BenchmarkXGBoostInvoke(b *testing.B) {
	artifact, err := abalone.Artifact(2)
	if err != nil {
		b.Fatal(err)
	}
	url := "s3://models/abalone/model.tar.gz"
	m, err := Prepare(context.Background(), spec.Container{Image: xgbImage, ModelDataURL: url},
		Source{Artifacts: memArtifacts{url: artifact}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	inst, err := m.Start(context.Background(), StartOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rows, err := abalone.Rows()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 100} {
		body := abalone.FeaturesCSV(rows[:n])
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			inv := &Invocation{}
			b.ReportAllocs()
			for b.Loop() {
				inv.Reset()
				inv.Body, inv.ContentType, inv.Accept = body, "text/csv", "text/csv"
				if err := inst.Invoke(context.Background(), inv); err != nil || inv.Status != 200 {
					b.Fatalf("status %d, err %v: %s", inv.Status, err, inv.Out)
				}
			}
		})
	}
}
