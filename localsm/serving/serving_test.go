package serving

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestResolveImages(t *testing.T) {
	imageMap := map[string]string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-model:2.0":            "python3 serve.py",
		"registry.local:5000/team/scorer":                                      "./scorer --fast",
		"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1": "my-own-xgb",
	}
	tests := []struct {
		image string
		kind  Kind
		cmd   string
	}{
		{"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", KindXGBoost, ""},
		{"141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1", KindXGBoost, ""},
		{"544295431143.dkr.ecr.ap-southeast-2.amazonaws.com/sagemaker-xgboost:1.3-1", KindXGBoost, ""},
		{"390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1", KindXGBoost, ""},
		{"811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest", KindXGBoost, ""},
		{"811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1", KindXGBoost, ""},
		{"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost", KindXGBoost, ""},
		{"mirror.example.com/ml/sagemaker-xgboost:1.7-1", KindXGBoost, ""},
		// The map wins, matching exactly or any tag of an untagged key.
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-model:2.0", KindProcess, "python3 serve.py"},
		{"registry.local:5000/team/scorer:v7", KindProcess, "./scorer --fast"},
		{"registry.local:5000/team/scorer@sha256:" + strings.Repeat("ab", 32), KindProcess, "./scorer --fast"},
		{"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1", KindProcess, "my-own-xgb"},
	}
	for _, tc := range tests {
		kind, cmd, err := Resolve(tc.image, imageMap)
		if err != nil || kind != tc.kind || cmd != tc.cmd {
			t.Errorf("Resolve(%s) = %v, %q, %v; want %v, %q", tc.image, kind, cmd, err, tc.kind, tc.cmd)
		}
	}
}

func TestResolveUnsupportedImageSaysHowToMapIt(t *testing.T) {
	for _, image := range []string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-model:2.0", // tag differs from no key
		"docker.io/library/xgboost:latest",                          // an xgboost repo that is not SageMaker's
		"123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2",
	} {
		_, _, err := Resolve(image, map[string]string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-model:1.0": "x"})
		if !errors.Is(err, ErrUnsupportedImage) {
			t.Fatalf("Resolve(%s): err = %v, want ErrUnsupportedImage", image, err)
		}
		for _, want := range []string{image, "--image-map", "SAGEMAKER_BIND_TO_PORT", "SM_MODEL_DIR"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Resolve(%s) error %q does not mention %q", image, err, want)
			}
		}
	}
	if _, _, err := Resolve("img", map[string]string{"img": "  "}); err == nil || !strings.Contains(err.Error(), "empty command") {
		t.Errorf("an empty mapped command: err = %v", err)
	}
}

func TestAppendPyFloatMatchesPythonRepr(t *testing.T) {
	// Left: values; right: python3 repr() of them (numbers from float32 as np.float32(x).item()).
	tests := []struct {
		v    float64
		want string
	}{
		{10, "10.0"},
		{1e-05, "1e-05"},
		{0.0001, "0.0001"},
		{0.00012345, "0.00012345"},
		{1.5e16, "1.5e+16"},
		{1e16, "1e+16"},
		{9999999999999998, "9999999999999998.0"},
		{1234567, "1234567.0"},
		{float64(float32(9.876543)), "9.876543045043945"},
		{0.1, "0.1"},
		{math.Copysign(0, -1), "-0.0"},
		{math.NaN(), "nan"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{float64(float32(7.65816736)), "7.658167362213135"},
		{123456789012345.67, "123456789012345.67"},
		{1e22, "1e+22"},
		{5e-324, "5e-324"},
		{-2.5e-7, "-2.5e-07"},
		{float64(float32(0.3)), "0.30000001192092896"},
		{100, "100.0"},
		{0.5, "0.5"},
	}
	for _, tc := range tests {
		if got := string(appendPyFloat(nil, tc.v)); got != tc.want {
			t.Errorf("appendPyFloat(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
	if got := string(appendJSONFloat(nil, math.NaN())) + string(appendJSONFloat(nil, math.Inf(1))); got != "NaNInfinity" {
		t.Errorf("JSON NaN/Infinity = %s", got)
	}
	// Whatever the value, the text reads back as the same number.
	for i := range 20000 {
		v := float64(math.Float32frombits(uint32(i) * 2654435761))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s := string(appendPyFloat(nil, v))
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != v {
			t.Fatalf("appendPyFloat(%v) = %s, reads back as %v (%v)", v, s, back, err)
		}
	}
}

func TestParseCSV(t *testing.T) {
	rows, n, perr := parseCSV([]byte("1,2,3\r\n4,,6\n\n 7 , 8 ,nan\n"), 4, nil)
	if perr != nil {
		t.Fatal(perr)
	}
	if n != 3 || len(rows) != 12 {
		t.Fatalf("got %d rows, %d values; want 3 rows of 4", n, len(rows))
	}
	want := []float64{1, 2, 3, math.NaN(), 4, math.NaN(), 6, math.NaN(), 7, 8, math.NaN(), math.NaN()}
	for i, w := range want {
		if g := float64(rows[i]); !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
			t.Errorf("value %d = %v, want %v (blank fields and short rows are missing)", i, g, w)
		}
	}
	// Values are read as float64 and narrowed, like numpy then xgboost.
	rows, _, _ = parseCSV([]byte("0.1"), 1, nil)
	if rows[0] != float32(0.1) {
		t.Errorf("0.1 parsed as %v", rows[0])
	}
	// Tabs when the first line has no comma.
	if rows, n, perr := parseCSV([]byte("1\t2\n3\t4"), 2, nil); perr != nil || n != 2 || rows[3] != 4 {
		t.Errorf("tab-separated: %v %d %v", rows, n, perr)
	}

	bad := []struct {
		body   string
		status int
		words  string
	}{
		{"Sex,Length\n1,2", 415, `line 1, field 1: "Sex" is not a number`},
		{"1,2\n1,2,3", 415, "line 2 has 3 fields but the first row has 2"},
		{"1,2,3,4,5", 400, "Feature size of csv inference data 5 is larger than feature size of trained model 4"},
		{"1,x2,3", 415, `field 2: "x2"`},
	}
	for _, tc := range bad {
		_, _, perr := parseCSV([]byte(tc.body), 4, nil)
		if perr == nil || perr.status != tc.status || !strings.Contains(perr.msg, tc.words) {
			t.Errorf("parseCSV(%q) = %v, want %d mentioning %q", tc.body, perr, tc.status, tc.words)
		}
	}
}

func TestParseLibSVM(t *testing.T) {
	nan := float32(math.NaN())
	same := func(a, b float32) bool { return a == b || a != a && b != b }
	check := func(body string, want []float32) {
		t.Helper()
		rows, _, perr := parseLibSVM([]byte(body), 3, nil)
		if perr != nil {
			t.Fatalf("parseLibSVM(%q): %v", body, perr)
		}
		if len(rows) != len(want) {
			t.Fatalf("parseLibSVM(%q) = %v, want %v", body, rows, want)
		}
		for i := range want {
			if !same(rows[i], want[i]) {
				t.Fatalf("parseLibSVM(%q) = %v, want %v", body, rows, want)
			}
		}
	}
	// Indices from 1 (none is 0) are shifted down, as SageMaker's container does; the label is ignored.
	check("15 1:0.5 3:2\n7 2:1", []float32{0.5, nan, 2, nan, 1, nan})
	// With an index 0 anywhere, indices are 0-based.
	check("0:1 2:3\n1:4", []float32{1, nan, 3, nan, 4, nan})
	if _, _, perr := parseLibSVM([]byte("1:1 5:2"), 3, nil); perr == nil || perr.status != 400 {
		t.Errorf("an index beyond the model's features: %v, want 400", perr)
	}
	if _, _, perr := parseLibSVM([]byte("1:x"), 3, nil); perr == nil || perr.status != 415 {
		t.Errorf("a bad value: %v, want 415", perr)
	}
}
