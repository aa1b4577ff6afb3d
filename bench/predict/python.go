package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed inplace.py
var inplaceScript []byte

// pythonPredictor is a python3 child holding the model and the rows, which times
// inplace_predict on request, so that rounds of ours and python can take turns.
type pythonPredictor struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	preds []float32 // python's predictions of all the rows
}

func startPython(ctx context.Context, python, modelPath, dir string, rows []float32, n, stride int) (*pythonPredictor, error) {
	script := filepath.Join(dir, "inplace.py")
	rowsPath := filepath.Join(dir, fmt.Sprintf("rows-%d.f32", n))
	if err := os.WriteFile(script, inplaceScript, 0o600); err != nil {
		return nil, err
	}
	if err := writeFloats(rowsPath, rows); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python, script, modelPath, rowsPath, strconv.Itoa(n), strconv.Itoa(stride))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (python3-xgboost and python3-numpy needed): %w", python, err)
	}
	p := &pythonPredictor{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if line, err := p.line(); err != nil || line != "ready" {
		p.close()
		return nil, fmt.Errorf("%s could not predict with the model (is python3-xgboost installed?): %q %v", python, line, err)
	}
	if p.preds, err = readFloats(rowsPath + ".py"); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// run asks for one round of at least d and returns python's µs per row: the median call's wall
// time and the mean CPU time of its thread.
func (p *pythonPredictor) run(d time.Duration) (timing, error) {
	if _, err := fmt.Fprintf(p.in, "run %f\n", d.Seconds()); err != nil {
		return timing{}, err
	}
	line, err := p.line()
	if err != nil {
		return timing{}, err
	}
	var t timing
	if _, err := fmt.Sscan(line, &t.wall, &t.cpu); err != nil {
		return timing{}, fmt.Errorf("python answered %q: %w", line, err)
	}
	return t, nil
}

func (p *pythonPredictor) line() (string, error) {
	if !p.out.Scan() {
		return "", fmt.Errorf("python exited: %v", p.out.Err())
	}
	return strings.TrimSpace(p.out.Text()), nil
}

func (p *pythonPredictor) close() {
	p.in.Close() // python's loop over stdin ends
	if err := p.cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "python:", err)
	}
}

func writeFloats(path string, xs []float32) error {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return os.WriteFile(path, b, 0o600)
}

func readFloats(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	xs := make([]float32, len(b)/4)
	for i := range xs {
		xs[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return xs, nil
}
