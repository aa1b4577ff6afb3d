package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"mime"
	"strings"
	"sync"

	"github.com/sagedeploy/sagedeploy/xgboost"
)

// Response content types, spelled as SageMaker's XGBoost container (a flask app) writes them.
const (
	acceptCSV = iota
	acceptJSON
	acceptJSONLines
)

var acceptContentType = [...]string{
	acceptCSV:       "text/csv; charset=utf-8",
	acceptJSON:      "application/json",
	acceptJSONLines: "application/jsonlines",
}

const supportedAccepts = "['application/json', 'application/jsonlines', 'text/csv']"

// xgbServer is the built-in XGBoost model server: SageMaker's XGBoost container's request and
// response formats over the pure-Go booster. One server is shared by every instance of a
// variant (the booster is safe for concurrent use); its scratch buffers are pooled.
type xgbServer struct {
	booster       *xgboost.Model
	features      int
	outputs       int
	objective     string
	defaultAccept int
	selected      []string // SAGEMAKER_INFERENCE_OUTPUT keys, nil when not set
	scratch       sync.Pool
}

type xgbScratch struct {
	rows  []float32
	preds []float32
}

func newXGBServer(booster *xgboost.Model, env map[string]string) (*xgbServer, error) {
	s := &xgbServer{
		booster:   booster,
		features:  booster.NumFeatures(),
		outputs:   max(booster.OutputSize(), 1),
		objective: booster.Objective(),
	}
	if v, ok := env["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"]; ok {
		a, ok := parseAcceptToken(v)
		if !ok {
			return nil, fmt.Errorf("environment SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=%q is not one of %s", v, supportedAccepts)
		}
		s.defaultAccept = a
	}
	if v, ok := env["SAGEMAKER_INFERENCE_OUTPUT"]; ok {
		for k := range strings.SplitSeq(strings.ToLower(strings.ReplaceAll(v, " ", "")), ",") {
			if k != "" {
				s.selected = append(s.selected, k)
			}
		}
		if _, ok := validSelectKeys[s.objective]; !ok {
			return nil, fmt.Errorf("environment SAGEMAKER_INFERENCE_OUTPUT is set but the model's objective %q has no selectable inference output", s.objective)
		}
	}
	s.scratch.New = func() any { return &xgbScratch{} }
	return s, nil
}

// xgbInstance is one "instance" of the built-in server: instances share the loaded model.
type xgbInstance struct{ srv *xgbServer }

func (i xgbInstance) Alive() bool                    { return true }
func (i xgbInstance) LogPath() string                { return "" }
func (i xgbInstance) Stop(ctx context.Context) error { return nil }

func (i xgbInstance) Invoke(ctx context.Context, inv *Invocation) error {
	i.srv.invoke(inv)
	return nil
}

func (s *xgbServer) invoke(inv *Invocation) {
	if len(inv.Body) == 0 {
		inv.Status = 204
		return
	}
	if perr := s.predict(inv); perr != nil {
		inv.Status = perr.status
		inv.RespContentType = "text/html; charset=utf-8"
		inv.Out = append(inv.Out[:0], perr.msg...)
	}
}

func (s *xgbServer) predict(inv *Invocation) *payloadError {
	libsvm, perr := requestFormat(inv.ContentType)
	if perr != nil {
		return perr
	}
	sc := s.scratch.Get().(*xgbScratch)
	defer s.scratch.Put(sc)
	var rows []float32
	var n int
	if libsvm {
		rows, n, perr = parseLibSVM(inv.Body, s.features, sc.rows[:0])
	} else {
		rows, n, perr = parseCSV(inv.Body, s.features, sc.rows[:0])
	}
	if rows != nil {
		sc.rows = rows
	}
	if perr != nil {
		return perr
	}
	if n == 0 {
		inv.Status = 204
		return nil
	}
	preds := s.booster.PredictRows(sc.preds[:0], rows[:n*s.features], s.features)
	sc.preds = preds
	if len(preds) != n*s.outputs {
		return badPayload(500, "the model returned %d values for %d rows; expected %d per row", len(preds), n, s.outputs)
	}
	accept, perr := s.accept(inv.Accept)
	if perr != nil {
		return perr
	}
	out := inv.Out[:0]
	if s.selected != nil {
		out, perr = s.encodeSelected(out, accept, preds, n)
		if perr != nil {
			return perr
		}
	} else {
		out = s.encode(out, accept, preds, n)
	}
	inv.Out = out
	inv.Status = 200
	inv.RespContentType = acceptContentType[accept]
	return nil
}

// requestFormat reads Content-Type: text/csv (label_size=1 allowed) or text/libsvm. No
// Content-Type at all is taken as text/csv.
func requestFormat(contentType string) (libsvm bool, perr *payloadError) {
	switch contentType {
	case "text/csv", "":
		return false, nil
	case "text/libsvm", "text/x-libsvm":
		return true, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false, badPayload(415, "Content-type %s is not supported: %v", contentType, err)
	}
	switch mt {
	case "text/csv":
		if ls, ok := params["label_size"]; ok && ls != "1" {
			return false, badPayload(415, "%s is not an accepted csv ContentType. Optional parameter label_size must be equal to 1", contentType)
		}
		return false, nil
	case "text/libsvm", "text/x-libsvm":
		return true, nil
	}
	return false, badPayload(415, "Content-type %s is not supported. Supported content-type is text/csv, text/libsvm "+
		"(application/x-recordio-protobuf is not supported by sagedeploy local); set ContentType to text/csv "+
		"and send one row of features per line", contentType)
}

func parseAcceptToken(tok string) (int, bool) {
	if i := strings.IndexByte(tok, ';'); i >= 0 {
		tok = tok[:i]
	}
	switch strings.ToLower(strings.TrimSpace(tok)) {
	case "text/csv":
		return acceptCSV, true
	case "application/json":
		return acceptJSON, true
	case "application/jsonlines":
		return acceptJSONLines, true
	}
	return 0, false
}

// accept picks the response format: the first supported type of the Accept header, the
// default (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else text/csv) for none or */*.
func (s *xgbServer) accept(h string) (int, *payloadError) {
	switch h {
	case "", "*/*":
		return s.defaultAccept, nil
	case "text/csv":
		return acceptCSV, nil
	case "application/json":
		return acceptJSON, nil
	}
	for tok := range strings.SplitSeq(h, ",") {
		if a, ok := parseAcceptToken(tok); ok {
			return a, nil
		}
		if t, _, _ := strings.Cut(tok, ";"); strings.TrimSpace(t) == "*/*" {
			return s.defaultAccept, nil
		}
	}
	return 0, badPayload(406, "Accept type %s is not supported. Please use supported accept types: %s.", h, supportedAccepts)
}

// encode writes predictions as the container does without selectable output: CSV one row per
// line; JSON {"predictions": [{"score": v}, ...]}; JSON lines {"score": v} per line. Rows of
// several values (multi:softprob) become a CSV line or a JSON list.
func (s *xgbServer) encode(out []byte, accept int, preds []float32, n int) []byte {
	k := s.outputs
	if accept == acceptJSON {
		out = append(out, `{"predictions": [`...)
	}
	for r := range n {
		row := preds[r*k : (r+1)*k]
		switch accept {
		case acceptCSV:
			for j, v := range row {
				if j > 0 {
					out = append(out, ',')
				}
				out = appendPyFloat(out, float64(v))
			}
			out = append(out, '\n')
		case acceptJSON, acceptJSONLines:
			if accept == acceptJSON && r > 0 {
				out = append(out, ", "...)
			}
			out = append(out, `{"score": `...)
			out = appendJSONRow(out, row, k > 1)
			out = append(out, '}')
			if accept == acceptJSONLines {
				out = append(out, '\n')
			}
		}
	}
	if accept == acceptJSON {
		out = append(out, "]}"...)
	}
	return out
}

func appendJSONRow(out []byte, row []float32, list bool) []byte {
	if !list {
		return appendJSONFloat(out, float64(row[0]))
	}
	out = append(out, '[')
	for j, v := range row {
		if j > 0 {
			out = append(out, ", "...)
		}
		out = appendJSONFloat(out, float64(v))
	}
	return append(out, ']')
}

// Selectable inference output (SAGEMAKER_INFERENCE_OUTPUT), after the container's serve_utils.
const (
	keyPredictedLabel = "predicted_label"
	keyLabels         = "labels"
	keyProbability    = "probability"
	keyProbabilities  = "probabilities"
	keyRawScore       = "raw_score"
	keyRawScores      = "raw_scores"
	keyPredictedScore = "predicted_score"
)

var selectKeyOrder = []string{keyPredictedLabel, keyLabels, keyProbability, keyProbabilities, keyRawScore, keyRawScores, keyPredictedScore}

var validSelectKeys = map[string][]string{
	"reg:squarederror":  {keyPredictedScore},
	"reg:logistic":      {keyPredictedScore},
	"reg:gamma":         {keyPredictedScore},
	"reg:absoluteerror": {keyPredictedScore},
	"reg:tweedie":       {keyPredictedScore},
	"binary:logistic":   {keyPredictedLabel, keyLabels, keyProbability, keyProbabilities, keyRawScore, keyRawScores},
	"binary:logitraw":   {keyPredictedLabel, keyLabels, keyRawScore, keyRawScores},
	"binary:hinge":      {keyPredictedLabel, keyLabels, keyRawScore, keyRawScores},
	"multi:softmax":     {keyPredictedLabel, keyLabels, keyRawScore, keyRawScores},
	"multi:softprob":    {keyPredictedLabel, keyLabels, keyProbability, keyProbabilities, keyRawScore, keyRawScores},
}

// value is one selectable output value as python would hold it.
type value struct {
	kind   int // valNaN, valInt, valFloat, valFloats, valInts
	i      int
	f      float64
	floats []float64
}

const (
	valNaN = iota
	valInt
	valFloat
	valFloats
	valInts
)

func (s *xgbServer) selectValue(key string, row []float32) value {
	obj := s.objective
	item := float64(row[0])
	switch key {
	case keyPredictedLabel:
		switch obj {
		case "binary:hinge", "multi:softmax":
			return value{kind: valFloat, f: item}
		case "binary:logistic":
			return value{kind: valInt, i: b2i(item > 0.5)}
		case "binary:logitraw":
			return value{kind: valInt, i: b2i(item > 0)}
		case "multi:softprob":
			return value{kind: valInt, i: argmax(row)}
		}
	case keyLabels:
		if strings.HasPrefix(obj, "binary:") {
			return value{kind: valInts, i: 2}
		}
		if obj == "multi:softprob" {
			return value{kind: valInts, i: len(row)}
		}
	case keyProbability:
		switch obj {
		case "multi:softprob":
			return value{kind: valFloat, f: float64(row[argmax(row)])}
		case "binary:logistic":
			return value{kind: valFloat, f: item}
		}
	case keyProbabilities:
		switch obj {
		case "multi:softprob":
			return value{kind: valFloats, floats: widen(row)}
		case "binary:logistic":
			return value{kind: valFloats, floats: []float64{1 - item, item}}
		}
	case keyRawScore:
		switch obj {
		case "multi:softprob":
			return value{kind: valFloat, f: float64(row[argmax(row)])}
		case "binary:logitraw", "binary:hinge", "binary:logistic", "multi:softmax":
			return value{kind: valFloat, f: item}
		}
	case keyRawScores:
		switch obj {
		case "multi:softprob":
			return value{kind: valFloats, floats: widen(row)}
		case "binary:logitraw", "binary:hinge", "binary:logistic", "multi:softmax":
			return value{kind: valFloats, floats: []float64{1 - item, item}}
		}
	case keyPredictedScore:
		return value{kind: valFloat, f: item}
	}
	return value{kind: valNaN}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

func widen(row []float32) []float64 {
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = float64(v)
	}
	return out
}

// appendValue writes v as python's str() (csv) or json.dumps (json) would.
func appendValue(out []byte, v value, json bool) []byte {
	num := appendPyFloat
	if json {
		num = appendJSONFloat
	}
	switch v.kind {
	case valInt:
		return fmt.Appendf(out, "%d", v.i)
	case valFloat:
		return num(out, v.f)
	case valFloats:
		out = append(out, '[')
		for j, f := range v.floats {
			if j > 0 {
				out = append(out, ", "...)
			}
			out = num(out, f)
		}
		return append(out, ']')
	case valInts:
		out = append(out, '[')
		for j := range v.i {
			if j > 0 {
				out = append(out, ", "...)
			}
			out = fmt.Appendf(out, "%d", j)
		}
		return append(out, ']')
	}
	return num(out, math.NaN())
}

func (s *xgbServer) encodeSelected(out []byte, accept int, preds []float32, n int) ([]byte, *payloadError) {
	valid := validSelectKeys[s.objective]
	// Keys in the container's fixed order, then the ones the objective cannot produce (as NaN).
	var keys []string
	for _, k := range selectKeyOrder {
		if contains(s.selected, k) && contains(valid, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range s.selected {
		if !contains(valid, k) && !contains(keys, k) {
			keys = append(keys, k)
		}
	}
	k := s.outputs
	if accept == acceptJSON {
		out = append(out, `{"predictions": [`...)
	}
	for r := range n {
		row := preds[r*k : (r+1)*k]
		if accept == acceptCSV {
			// The container joins these lines without a trailing newline.
			if r > 0 {
				out = append(out, '\n')
			}
			for j, key := range s.selected {
				if j > 0 {
					out = append(out, ',')
				}
				v := s.selectValue(key, row)
				if !contains(valid, key) {
					v = value{kind: valNaN}
				}
				if v.kind == valFloats || v.kind == valInts {
					out = append(out, '"')
					out = appendValue(out, v, false)
					out = append(out, '"')
				} else {
					out = appendValue(out, v, false)
				}
			}
			continue
		}
		if accept == acceptJSON && r > 0 {
			out = append(out, ", "...)
		}
		out = append(out, '{')
		for j, key := range keys {
			if j > 0 {
				out = append(out, ", "...)
			}
			v := s.selectValue(key, row)
			if !contains(valid, key) {
				v = value{kind: valNaN}
			}
			out = append(out, '"')
			out = append(out, key...)
			out = append(out, `": `...)
			out = appendValue(out, v, true)
		}
		out = append(out, '}')
		if accept == acceptJSONLines {
			out = append(out, '\n')
		}
	}
	if accept == acceptJSON {
		out = append(out, "]}"...)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
