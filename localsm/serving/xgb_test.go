package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

const xgbImage = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"

// startXGB prepares the built-in server for an artifact and returns an instance of it.
func startXGB(t *testing.T, artifact []byte, env map[string]string) Instance {
	t.Helper()
	url := "s3://models/abalone/model.tar.gz"
	m, err := Prepare(context.Background(), spec.Container{Image: xgbImage, ModelDataURL: url, Environment: env},
		Source{Artifacts: memArtifacts{url: artifact}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	if m.Kind() != KindXGBoost {
		t.Fatalf("kind %v, want the built-in XGBoost server", m.Kind())
	}
	inst, err := m.Start(context.Background(), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func invoke(t *testing.T, inst Instance, body []byte, contentType, accept string) *Invocation {
	t.Helper()
	inv := &Invocation{Body: body, ContentType: contentType, Accept: accept}
	if err := inst.Invoke(context.Background(), inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

func abaloneArtifact(t *testing.T, version int) []byte {
	t.Helper()
	b, err := abalone.Artifact(version)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expected reads what python's xgboost predicts for abalone.SampleCSV.
func expected(t *testing.T, version int) []float32 {
	t.Helper()
	b, err := abalone.ExpectedCSV(version)
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	for _, line := range strings.Fields(string(b)) {
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, float32(v))
	}
	return out
}

func parseLines(t *testing.T, body []byte) []float32 {
	t.Helper()
	var out []float32
	for line := range strings.SplitSeq(strings.TrimSuffix(string(body), "\n"), "\n") {
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatalf("response line %q: %v (body %q)", line, err, body)
		}
		out = append(out, float32(v))
	}
	return out
}

func equalPreds(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d predictions, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: prediction %d = %v, python's xgboost says %v", what, i, got[i], want[i])
		}
	}
}

func TestXGBoostServesAbaloneLikePython(t *testing.T) {
	for _, version := range abalone.Versions() {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			inst := startXGB(t, abaloneArtifact(t, version), nil)
			want := expected(t, version)

			inv := invoke(t, inst, abalone.SampleCSV(), "text/csv", "")
			if inv.Status != 200 || inv.RespContentType != "text/csv; charset=utf-8" {
				t.Fatalf("status %d, content type %q: %s", inv.Status, inv.RespContentType, inv.Out)
			}
			if !bytes.HasSuffix(inv.Out, []byte("\n")) || bytes.Count(inv.Out, []byte("\n")) != len(want) {
				t.Errorf("text/csv answer is not one prediction per line: %q", inv.Out)
			}
			equalPreds(t, "text/csv", parseLines(t, inv.Out), want)

			// label_size=1 is accepted, as SageMaker's container does.
			inv = invoke(t, inst, abalone.SampleCSV(), "text/csv; label_size=1", "text/csv")
			equalPreds(t, "text/csv;label_size=1", parseLines(t, inv.Out), want)

			inv = invoke(t, inst, abalone.SampleCSV(), "text/csv", "application/json")
			if inv.RespContentType != "application/json" {
				t.Errorf("JSON content type %q", inv.RespContentType)
			}
			var doc struct {
				Predictions []struct{ Score float64 } `json:"predictions"`
			}
			if err := json.Unmarshal(inv.Out, &doc); err != nil {
				t.Fatalf("application/json answer %q: %v", inv.Out, err)
			}
			if !bytes.HasPrefix(inv.Out, []byte(`{"predictions": [{"score": `)) {
				t.Errorf("application/json answer not shaped as the container's: %.60s", inv.Out)
			}
			var got []float32
			for _, p := range doc.Predictions {
				got = append(got, float32(p.Score))
			}
			equalPreds(t, "application/json", got, want)

			inv = invoke(t, inst, abalone.SampleCSV(), "text/csv", "application/jsonlines")
			got = got[:0]
			for line := range strings.SplitSeq(strings.TrimSpace(string(inv.Out)), "\n") {
				var rec struct{ Score float64 }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("jsonlines line %q: %v", line, err)
				}
				got = append(got, float32(rec.Score))
			}
			equalPreds(t, "application/jsonlines", got, want)

			// text/libsvm with 1-based indices and a label, every value given.
			var svm bytes.Buffer
			for line := range strings.SplitSeq(strings.TrimSpace(string(abalone.SampleCSV())), "\n") {
				svm.WriteString("0")
				for i, f := range strings.Split(line, ",") {
					fmt.Fprintf(&svm, " %d:%s", i+1, f)
				}
				svm.WriteString("\n")
			}
			inv = invoke(t, inst, svm.Bytes(), "text/libsvm", "text/csv")
			equalPreds(t, "text/libsvm", parseLines(t, inv.Out), want)
		})
	}
}

func TestXGBoostRefusesBadRequestsAsTheContainerDoes(t *testing.T) {
	inst := startXGB(t, abaloneArtifact(t, 1), nil)
	row := strings.SplitN(string(abalone.SampleCSV()), "\n", 2)[0]
	tests := []struct {
		name, body, contentType, accept string
		status                          int
		words                           string
	}{
		{"json input", `{"instances": [[1,2]]}`, "application/json", "", 415, "Content-type application/json is not supported"},
		{"sdk default content type", row, "application/octet-stream", "", 415, "set ContentType to text/csv"},
		{"header row", "Sex_F,Sex_I\n" + row, "text/csv", "", 415, `"Sex_F" is not a number`},
		{"label included", row + ",15", "text/csv", "", 400, "Feature size of csv inference data 11 is larger than feature size of trained model 10"},
		{"bad label_size", row, "text/csv;label_size=2", "", 415, "label_size must be equal to 1"},
		{"unknown accept", row, "text/csv", "application/xml", 406, "Accept type application/xml is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := invoke(t, inst, []byte(tc.body), tc.contentType, tc.accept)
			if inv.Status != tc.status || !strings.Contains(string(inv.Out), tc.words) {
				t.Errorf("status %d %q; want %d saying %q", inv.Status, inv.Out, tc.status, tc.words)
			}
		})
	}
	if inv := invoke(t, inst, nil, "text/csv", ""); inv.Status != 204 || len(inv.Out) != 0 {
		t.Errorf("empty body: status %d %q, want 204 and nothing", inv.Status, inv.Out)
	}
	// No Content-Type at all is read as CSV; a list of accepts takes the first supported one.
	if inv := invoke(t, inst, []byte(row), "", "application/xml, application/json;q=0.9"); inv.Status != 200 || inv.RespContentType != "application/json" {
		t.Errorf("no content type, accept list: status %d, %q", inv.Status, inv.RespContentType)
	}
}

func TestXGBoostArtifacts(t *testing.T) {
	model := readTestdata(t, "binary_logistic.json")
	// pickle.pkl is a pickle whose loading would run os.system (made with a class whose
	// __reduce__ returns it): the one kind of pickle the server must refuse by name.
	pickle := readTestdata(t, "pickle.pkl")
	url := "s3://models/m/model.tar.gz"
	prepare := func(archive []byte) error {
		m, err := Prepare(context.Background(), spec.Container{Image: xgbImage, ModelDataURL: url}, Source{Artifacts: memArtifacts{url: archive}})
		if err == nil {
			m.Release()
		}
		return err
	}
	// Another file name, a plain tar, a directory inside: all served.
	for _, archive := range [][]byte{
		makeTar(t, true, tarEntry{name: "model.json", body: string(model)}),
		makeTar(t, false, tarEntry{name: "xgboost-model", body: string(model)}),
		makeTar(t, true, tarEntry{name: "out/", typ: '5'}, tarEntry{name: "out/booster.json", body: string(model)}),
		makeTar(t, true, tarEntry{name: "notes.txt", body: "hello"}, tarEntry{name: "z.json", body: string(model)}),
	} {
		if err := prepare(archive); err != nil {
			t.Errorf("Prepare: %v", err)
		}
	}
	failures := []struct {
		name    string
		archive []byte
		words   []string
	}{
		{"pickle that runs code", makeTar(t, true, tarEntry{name: "xgboost-model", body: string(pickle)}),
			[]string{url, "xgboost-model", "pickle", "posix.system", "never runs code"}},
		{"no model file", makeTar(t, true, tarEntry{name: "._xgboost-model", body: "x"}), []string{url, "holds no model file", "xgboost-model"}},
		{"nothing loadable", makeTar(t, true, tarEntry{name: "a.txt", body: "a"}, tarEntry{name: "b.pkl", body: string(pickle)}),
			[]string{url, "a.txt", "b.pkl", "name the model file xgboost-model"}},
	}
	for _, tc := range failures {
		err := prepare(tc.archive)
		for _, w := range tc.words {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v does not say %q", tc.name, err, w)
			}
		}
	}
	_, err := Prepare(context.Background(), spec.Container{Image: xgbImage}, Source{Artifacts: memArtifacts{}})
	if err == nil || !strings.Contains(err.Error(), "needs ModelDataUrl") {
		t.Errorf("no ModelDataUrl: %v", err)
	}
	_, err = Prepare(context.Background(), spec.Container{Image: xgbImage, ModelDataURL: "s3://nope/model.tar.gz"}, Source{Artifacts: memArtifacts{}})
	if err == nil || !strings.Contains(err.Error(), "s3://nope/model.tar.gz") {
		t.Errorf("missing object: %v", err)
	}
}

func TestXGBoostSelectableOutput(t *testing.T) {
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	csvRow := func(vals []float32) []byte {
		var b []byte
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
		}
		return b
	}
	// The answers below are what python builds from the same predictions (json.dumps, str()).
	binary := startXGB(t, makeTar(t, true, tarEntry{name: "xgboost-model", body: string(readTestdata(t, "binary_logistic.json"))}),
		map[string]string{"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label, labels,probability,probabilities"})
	inv := invoke(t, binary, csvRow(rows[0].Features), "text/csv", "application/json")
	want := `{"predictions": [{"predicted_label": 0, "labels": [0, 1], "probability": 0.30030933022499084, "probabilities": [0.6996906697750092, 0.30030933022499084]}]}`
	if string(inv.Out) != want {
		t.Errorf("binary:logistic selectable JSON\n got %s\nwant %s", inv.Out, want)
	}

	measure8 := append(append([]float32(nil), rows[0].Features[3:]...), rows[0].Rings)
	multi := startXGB(t, makeTar(t, true, tarEntry{name: "xgboost-model", body: string(readTestdata(t, "multi_softprob.json"))}),
		map[string]string{"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilities", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"})
	inv = invoke(t, multi, csvRow(measure8), "text/csv", "")
	want = `{"predictions": [{"predicted_label": 2, "probabilities": [0.31823301315307617, 0.28908368945121765, 0.3926832973957062]}]}`
	if string(inv.Out) != want {
		t.Errorf("multi:softprob selectable JSON\n got %s\nwant %s", inv.Out, want)
	}
	inv = invoke(t, multi, csvRow(measure8), "text/csv", "text/csv")
	want = `2,"[0.31823301315307617, 0.28908368945121765, 0.3926832973957062]"`
	if string(inv.Out) != want {
		t.Errorf("multi:softprob selectable CSV\n got %s\nwant %s", inv.Out, want)
	}
	// Without selectable output, a multi-output row is one CSV line.
	plain := startXGB(t, makeTar(t, true, tarEntry{name: "xgboost-model", body: string(readTestdata(t, "multi_softprob.json"))}), nil)
	inv = invoke(t, plain, csvRow(measure8), "text/csv", "")
	if want := "0.31823301315307617,0.28908368945121765,0.3926832973957062\n"; string(inv.Out) != want {
		t.Errorf("multi:softprob CSV %q, want %q", inv.Out, want)
	}
}
