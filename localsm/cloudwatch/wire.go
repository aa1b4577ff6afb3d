package cloudwatch

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// protocol is how a client speaks to CloudWatch: the AWS CLI v2 and boto3 of Debian use the query
// protocol; the AWS SDK for Go v2 and recent botocore use Smithy RPC v2 CBOR; other SDKs JSON 1.0.
type protocol int

const (
	protoQuery protocol = iota
	protoJSON
	protoCBOR
)

const (
	// serviceName is CloudWatch's Smithy service name, in CBOR paths and JSON targets.
	serviceName = "GraniteServiceVersion20100801"
	cborPrefix  = "/service/" + serviceName + "/operation/"
	targetPfx   = serviceName + "."
	xmlNS       = "http://monitoring.amazonaws.com/doc/2010-08-01/"
	// signingName is the service in SigV4 credential scopes of CloudWatch requests.
	signingName = "monitoring"
	maxRequest  = 1 << 20
)

// Claims reports whether a request is a CloudWatch call; signedFor is the service of its SigV4
// credential scope ("" when unsigned).
func Claims(r *http.Request, signedFor string) bool {
	// An S3 request for bucket "service" shares the CBOR path's first segment.
	return (strings.HasPrefix(r.URL.Path, cborPrefix) && signedFor != "s3") ||
		strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPfx) ||
		signedFor == signingName
}

// decodeRequest reads the operation name and its input tree in whichever protocol was used.
func decodeRequest(r *http.Request) (protocol, string, map[string]any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil {
		return protoQuery, "", nil, errInvalidValue("Could not read the request body: %v", err)
	}
	if len(body) > maxRequest {
		return protoQuery, "", nil, apiErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request body is larger than %d bytes.", maxRequest)
	}
	if op, ok := strings.CutPrefix(r.URL.Path, cborPrefix); ok {
		tree, err := decodeCBOR(body)
		return protoCBOR, op, tree, err
	}
	if op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPfx); ok {
		tree := map[string]any{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &tree); err != nil {
				return protoJSON, op, nil, apiErr(http.StatusBadRequest, "SerializationException", "The request body is not valid JSON: %v", err)
			}
		}
		return protoJSON, op, tree, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return protoQuery, "", nil, errInvalidValue("The request body is not a valid form: %v", err)
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	return protoQuery, form.Get("Action"), formTree(form), nil
}

func decodeCBOR(body []byte) (map[string]any, error) {
	if len(body) == 0 {
		return map[string]any{}, nil
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "SerializationException", "The request body is not valid CBOR: %v", err)
	}
	tree, _ := fromCBOR(v).(map[string]any)
	if tree == nil {
		return nil, apiErr(http.StatusBadRequest, "SerializationException", "The request body is not a CBOR map.")
	}
	return tree, nil
}

func fromCBOR(v cbor.Value) any {
	switch x := v.(type) {
	case cbor.Map:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = fromCBOR(e)
		}
		return m
	case cbor.List:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = fromCBOR(e)
		}
		return l
	case cbor.String:
		return string(x)
	case cbor.Uint:
		return float64(x)
	case cbor.NegInt:
		return -1 - float64(x)
	case cbor.Float32:
		return float64(x)
	case cbor.Float64:
		return float64(x)
	case cbor.Bool:
		return bool(x)
	case *cbor.Tag:
		if x.ID == 1 {
			if t, err := cbor.AsTime(x); err == nil {
				return t.UTC()
			}
		}
		return fromCBOR(x.Value)
	}
	return nil
}

// formTree turns query parameters (Dimensions.member.1.Name=...) into a tree.
func formTree(form url.Values) map[string]any {
	root := map[string]any{}
	for k, vs := range form {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") || len(vs) == 0 {
			continue
		}
		node := root
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := node[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[p] = next
			}
			node = next
		}
		node[parts[len(parts)-1]] = vs[0]
	}
	return normalizeLists(root).(map[string]any)
}

// normalizeLists turns {"member": {"1": a, "2": b}} into [a, b].
func normalizeLists(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if members, ok := m["member"].(map[string]any); ok && len(m) == 1 {
		type indexed struct {
			i int
			v any
		}
		var items []indexed
		for k, e := range members {
			i, _ := strconv.Atoi(k)
			items = append(items, indexed{i, normalizeLists(e)})
		}
		sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
		list := make([]any, len(items))
		for i, it := range items {
			list[i] = it.v
		}
		return list
	}
	for k, e := range m {
		m[k] = normalizeLists(e)
	}
	return m
}

// writeResult answers a successful call; out is nil for operations without output.
func writeResult(w http.ResponseWriter, p protocol, op, requestID string, out any) {
	var tree []field
	if out != nil {
		t, _ := toTreeOf(out)
		tree = t
	}
	switch p {
	case protoCBOR:
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.WriteHeader(http.StatusOK)
		w.Write(cbor.Encode(toCBOR(tree)))
	case protoJSON:
		body, _ := json.Marshal(toJSON(tree))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	default:
		var b bytes.Buffer
		fmt.Fprintf(&b, `<%sResponse xmlns="%s">`, op, xmlNS)
		if out != nil {
			fmt.Fprintf(&b, "<%sResult>", op)
			writeXMLFields(&b, tree)
			fmt.Fprintf(&b, "</%sResult>", op)
		}
		fmt.Fprintf(&b, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", requestID, op)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusOK)
		w.Write(b.Bytes())
	}
}

func toTreeOf(out any) ([]field, bool) {
	v, ok := toTree(reflectValue(out))
	f, _ := v.([]field)
	return f, ok
}

// writeFailure answers with an error as each protocol carries it. CBOR and JSON clients of this
// query-compatible service read the query error code from X-Amzn-Query-Error.
func writeFailure(w http.ResponseWriter, p protocol, requestID string, err error) *APIError {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = apiErr(http.StatusInternalServerError, "InternalServiceError", "%v", err)
	}
	fault := "Sender"
	if ae.Status >= 500 {
		fault = "Receiver"
	}
	switch p {
	case protoCBOR, protoJSON:
		w.Header().Set("X-Amzn-Query-Error", ae.Code+";"+fault)
		// Some error shapes name their member Message, most message: send both.
		body := map[string]string{"__type": "com.amazonaws.cloudwatch#" + ae.shape(), "message": ae.Message, "Message": ae.Message}
		if p == protoCBOR {
			w.Header().Set("Content-Type", "application/cbor")
			w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
			w.WriteHeader(ae.Status)
			w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(body["__type"]), "message": cbor.String(ae.Message), "Message": cbor.String(ae.Message)}))
			return ae
		}
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(ae.Status)
		w.Write(b)
	default:
		var b bytes.Buffer
		fmt.Fprintf(&b, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>`, xmlNS, fault, ae.Code)
		xml.EscapeText(&b, []byte(ae.Message))
		fmt.Fprintf(&b, "</Message></Error><RequestId>%s</RequestId></ErrorResponse>", requestID)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(ae.Status)
		w.Write(b.Bytes())
	}
	return ae
}

func toCBOR(v any) cbor.Value {
	switch x := v.(type) {
	case entries:
		return toCBOR([]field(x))
	case []field:
		m := cbor.Map{}
		for _, f := range x {
			m[f.name] = toCBOR(f.value)
		}
		return m
	case []any:
		l := make(cbor.List, len(x))
		for i, e := range x {
			l[i] = toCBOR(e)
		}
		return l
	case string:
		return cbor.String(x)
	case float64:
		return cbor.Float64(x)
	case int64:
		if x < 0 {
			return cbor.NegInt(uint64(-x - 1))
		}
		return cbor.Uint(uint64(x))
	case bool:
		return cbor.Bool(x)
	case time.Time:
		return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(x.UnixMilli()) / 1e3)}
	}
	return &cbor.Nil{}
}

func toJSON(v any) any {
	switch x := v.(type) {
	case entries:
		return toJSON([]field(x))
	case []field:
		m := map[string]any{}
		for _, f := range x {
			m[f.name] = toJSON(f.value)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = toJSON(e)
		}
		return l
	case time.Time:
		return float64(x.UnixMilli()) / 1e3
	}
	return v
}

func writeXMLFields(b *bytes.Buffer, fields []field) {
	for _, f := range fields {
		fmt.Fprintf(b, "<%s>", f.name)
		writeXMLValue(b, f.value)
		fmt.Fprintf(b, "</%s>", f.name)
	}
}

func writeXMLValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case entries:
		for _, e := range x {
			b.WriteString("<entry><key>")
			xml.EscapeText(b, []byte(e.name))
			b.WriteString("</key><value>")
			writeXMLValue(b, e.value)
			b.WriteString("</value></entry>")
		}
	case []field:
		writeXMLFields(b, x)
	case []any:
		for _, e := range x {
			b.WriteString("<member>")
			writeXMLValue(b, e)
			b.WriteString("</member>")
		}
	case string:
		xml.EscapeText(b, []byte(x))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case time.Time:
		b.WriteString(x.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
}

// APIError is a CloudWatch error: the query error code clients see, its message and status.
type APIError struct {
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// shape is the Smithy error shape of a query error code, which CBOR and JSON clients match on.
func (e *APIError) shape() string {
	shapes := map[string]string{
		"InvalidParameterValue":       "InvalidParameterValueException",
		"MissingParameter":            "MissingRequiredParameterException",
		"InvalidParameterCombination": "InvalidParameterCombinationException",
		"ResourceNotFound":            "ResourceNotFound",
		"InvalidNextToken":            "InvalidNextToken",
		"InvalidFormat":               "InvalidFormatFault",
		"LimitExceeded":               "LimitExceededFault",
		"InternalServiceError":        "InternalServiceFault",
	}
	if s, ok := shapes[e.Code]; ok {
		return s
	}
	return e.Code
}

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

func errInvalidValue(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

func errMissing(param string) *APIError {
	return apiErr(http.StatusBadRequest, "MissingParameter", "The parameter %s is required.", param)
}

func errCombination(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "InvalidParameterCombination", format, args...)
}

func errNotFound(format string, args ...any) *APIError {
	return apiErr(http.StatusNotFound, "ResourceNotFound", format, args...)
}

// notServed lists CloudWatch operations this emulator does not serve, so that callers get a
// clear answer rather than "unknown operation".
var notServed = []string{"DescribeAlarmHistory", "PutCompositeAlarm", "PutDashboard", "GetDashboard",
	"ListDashboards", "DeleteDashboards", "PutAnomalyDetector", "DescribeAnomalyDetectors",
	"EnableAlarmActions", "DisableAlarmActions", "TagResource", "UntagResource", "ListTagsForResource",
	"PutMetricStream", "GetMetricWidgetImage", "PutInsightRule", "DescribeInsightRules"}

func unknownOperation(op string) *APIError {
	if slices.Contains(notServed, op) {
		return apiErr(http.StatusBadRequest, "InvalidAction",
			"CloudWatch %s is not served by sagedeploy local; it serves metrics (PutMetricData, GetMetricData, GetMetricStatistics, ListMetrics) and metric alarms.", op)
	}
	return apiErr(http.StatusBadRequest, "InvalidAction", "Could not find operation %q for CloudWatch version 2010-08-01.", op)
}
