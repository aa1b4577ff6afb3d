package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/sagedeploy/sagedeploy/xgboost"
)

func run(ctx context.Context, o options) error {
	raw, err := readModel(o.model)
	if err != nil {
		return err
	}
	m, err := xgboost.Load(raw)
	if err != nil {
		return fmt.Errorf("load %s: %w", o.model, err)
	}
	stride := m.NumFeatures()
	most := slices.Max(o.rows)
	data, err := loadRows(o.data, most, stride)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sagedeploy-bench-predict-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Python reads the model from a file of its own: model.tar.gz is unpacked, the rest copied.
	modelPath := filepath.Join(dir, "model")
	if err := os.WriteFile(modelPath, raw, 0o600); err != nil {
		return err
	}
	fmt.Printf("model %s: %d trees, %d features, objective %s; rows: %s\n", o.model, m.NumTrees(), stride, m.Objective(), o.data)
	fmt.Printf("machine: %s, nproc %d, load average %s, %s\n", cpuModel(), runtime.NumCPU(), loadAverage(), runtime.Version())
	fmt.Printf("\nµs per row: thread CPU time (wall time of the median call in parentheses); %d rounds of %s each, taking turns\n", o.rounds, o.measure)
	fmt.Printf("\n| rows/call | ours µs/row (PredictRows) | ours row by row (PredictTo, the walk before PredictRows) | xgboost inplace_predict µs/row (nthread=1) | PredictRows faster by | predictions |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, n := range o.rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := measure(ctx, o, m, modelPath, dir, data[:n*stride], n, stride)
		if err != nil {
			return err
		}
		fmt.Println(r.row(n))
	}
	fmt.Printf("\nload average after: %s\n", loadAverage())
	return nil
}

// timing is µs per row: the median call's wall time, and the thread's CPU time per call. On a
// shared machine the CPU time is the steadier of the two (waiting for a core is not counted).
type timing struct{ wall, cpu float64 }

type result struct {
	ours, byRow, python timing // python's zero when not measured
	check               string
}

func (r result) row(n int) string {
	ours := fmt.Sprintf("| %d | %.3f (%.3f) | %.3f (%.3f) |", n, r.ours.cpu, r.ours.wall, r.byRow.cpu, r.byRow.wall)
	if r.python.cpu == 0 {
		return fmt.Sprintf("%s – | – | %s |", ours, r.check)
	}
	return fmt.Sprintf("%s %.3f (%.3f) | **%.2f×** (%.2f×) | %s |", ours, r.python.cpu, r.python.wall,
		r.python.cpu/r.ours.cpu, r.python.wall/r.ours.wall, r.check)
}

// measure runs the rounds of one batch size: ours then python, o.rounds times.
func measure(ctx context.Context, o options, m *xgboost.Model, modelPath, dir string, rows []float32, n, stride int) (result, error) {
	res := result{check: "python not run"}
	var py *pythonPredictor
	if o.python != "" {
		var err error
		py, err = startPython(ctx, o.python, modelPath, dir, rows, n, stride)
		if err != nil {
			fmt.Fprintf(os.Stderr, "python baseline skipped: %v\n", err)
		} else {
			defer py.close()
			res.check = compare(m.PredictRows(nil, rows, stride), py.preds)
		}
	}
	var ours, byRow, python []timing
	dst := make([]float32, 0, n*m.OutputSize())
	predictRows := func() { dst = m.PredictRows(dst[:0], rows, stride) }
	predictEach := func() { // the walk before PredictRows: every row through every tree
		dst = dst[:0]
		for r := range n {
			dst = m.PredictTo(dst, rows[r*stride:(r+1)*stride])
		}
	}
	for round := range o.rounds {
		ours = append(ours, timeCalls(predictRows, n, o.measure))
		byRow = append(byRow, timeCalls(predictEach, n, o.measure))
		if py != nil {
			t, err := py.run(o.measure)
			if err != nil {
				return res, fmt.Errorf("python round %d of %d rows: %w", round+1, n, err)
			}
			python = append(python, t)
		}
		fmt.Fprintf(os.Stderr, "rows=%d round %d: ours %+v µs/row, python %+v\n", n, round+1, ours[len(ours)-1], python)
	}
	res.ours, res.byRow = medians(ours), medians(byRow)
	if len(python) > 0 {
		res.python = medians(python)
	}
	return res, nil
}

// timeCalls calls predict (n rows) for at least d, as the python side calls inplace_predict,
// on one locked thread whose CPU time it reads.
func timeCalls(predict func(), n int, d time.Duration) timing {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var walls []float64
	cpu0 := threadCPU()
	deadline := time.Now().Add(d)
	for {
		start := time.Now()
		predict()
		end := time.Now()
		walls = append(walls, float64(end.Sub(start).Nanoseconds())/1e3/float64(n))
		if end.After(deadline) && len(walls) >= 3 {
			break
		}
	}
	cpu := float64(threadCPU()-cpu0) / 1e3 / float64(len(walls)*n)
	return timing{wall: median(walls), cpu: cpu}
}

func medians(ts []timing) timing {
	var walls, cpus []float64
	for _, t := range ts {
		walls, cpus = append(walls, t.wall), append(cpus, t.cpu)
	}
	return timing{wall: median(walls), cpu: median(cpus)}
}

// compare says how many of ours and python's predictions have the same bits.
func compare(ours, python []float32) string {
	if len(ours) != len(python) {
		return fmt.Sprintf("MISMATCH: %d values from ours, %d from python", len(ours), len(python))
	}
	same, worst := 0, 0.0
	for i := range ours {
		if math.Float32bits(ours[i]) == math.Float32bits(python[i]) {
			same++
		}
		worst = max(worst, math.Abs(float64(ours[i])-float64(python[i])))
	}
	return fmt.Sprintf("%d/%d same bits, max diff %.2g", same, len(ours), worst)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
