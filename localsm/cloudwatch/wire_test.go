package cloudwatch

import (
	"math"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// Query-protocol forms, as the AWS CLI and boto3 send them, become the same inputs as the other
// protocols: numbered members in order (10 after 9), empty lists, nested structures.
func TestFormTree(t *testing.T) {
	form := url.Values{"Action": {"PutMetricAlarm"}, "Version": {"2010-08-01"}, "AlarmName": {"a"},
		"OKActions": {""}, "Threshold": {"1.5"}, "Period": {"60"}}
	for i, n := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"} {
		form.Set("AlarmActions.member."+n, "arn:"+string(rune('a'+i)))
	}
	form.Set("Dimensions.member.1.Name", "EndpointName")
	form.Set("Dimensions.member.1.Value", "ep")
	var in putMetricAlarmInput
	if err := bind(formTree(form), &in); err != nil {
		t.Fatal(err)
	}
	if in.OKActions == nil || len(in.OKActions) != 0 || len(in.AlarmActions) != 10 || in.AlarmActions[9] != "arn:j" {
		t.Fatalf("lists = OK %#v, Alarm %#v; want an empty list and 10 actions in member order", in.OKActions, in.AlarmActions)
	}
	if *in.Threshold != 1.5 || in.Period != 60 || !reflect.DeepEqual(in.Dimensions, []Dimension{{"EndpointName", "ep"}}) {
		t.Fatalf("input = %+v", in)
	}
	form.Set("Period", "sixty")
	err := bind(formTree(form), &in)
	if err == nil || !strings.Contains(err.Error(), "The value sixty for parameter Period is invalid") {
		t.Fatalf("bad number: %v", err)
	}
}

// Query-protocol errors are XML with the query code, as the AWS CLI prints them.
func TestQueryErrorXML(t *testing.T) {
	w := httptest.NewRecorder()
	writeFailure(w, protoQuery, "req-1", errNotFound("Alarm <x> not found"))
	body := w.Body.String()
	if w.Code != 404 || !strings.Contains(body, "<Code>ResourceNotFound</Code>") || !strings.Contains(body, "Alarm &lt;x&gt; not found") ||
		!strings.Contains(body, "<Type>Sender</Type>") || !strings.Contains(body, "<RequestId>req-1</RequestId>") {
		t.Fatalf("error response %d %s", w.Code, body)
	}
}

// Percentile bins hold every value within 0.8%, across magnitudes and signs.
func TestSketchAccuracy(t *testing.T) {
	for _, v := range []float64{1e-6, 0.3, 1, 1.5, 7, 99.9, 12345, 8e9} {
		for _, sign := range []float64{1, -1} {
			s := &sketch{}
			s.addValue(sign*v, 1)
			if got := s.quantile(0.5); math.Abs(got-sign*v) > 0.008*v {
				t.Errorf("value %v: bin middle %v is more than 0.8%% away", sign*v, got)
			}
		}
	}
}
