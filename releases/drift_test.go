package releases_test

import (
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
)

func TestCompareSaysWhatDiffers(t *testing.T) {
	rec := releases.Recorded{Version: 3, EndpointConfigName: "abalone-dev-v3", InstanceType: "ml.m5.large", InstanceCount: 2, EndpointStatus: "InService"}
	same := releases.Observation{Version: 3, EndpointConfigName: "abalone-dev-v3", InstanceType: "ml.m5.large", InstanceCount: 2, EndpointStatus: "InService"}
	for _, tc := range []struct {
		name string
		obs  func(o *releases.Observation)
		want string // Drift.Summary of the differences, "" for none
	}{
		{"in sync", func(o *releases.Observation) {}, ""},
		{"another version and config", func(o *releases.Observation) { o.Version, o.EndpointConfigName = 4, "console-made" },
			"changed outside sagedeploy: version 3 → 4, config abalone-dev-v3 → console-made"},
		{"scaled in the console", func(o *releases.Observation) { o.InstanceCount = 5 }, "changed outside sagedeploy: instances 2 → 5"},
		{"another instance type", func(o *releases.Observation) { o.InstanceType = "ml.c5.xlarge" }, "changed outside sagedeploy: instance_type ml.m5.large → ml.c5.xlarge"},
		{"failed", func(o *releases.Observation) { o.EndpointStatus = "Failed" }, "changed outside sagedeploy: status InService → Failed"},
		{"updating is not a difference yet", func(o *releases.Observation) { o.EndpointStatus = "Updating" }, ""},
		{"a model not made by sagedeploy (no version) is compared on the rest", func(o *releases.Observation) { o.Version = 0 }, ""},
		{"deleted", func(o *releases.Observation) { o.Missing = true }, "changed outside sagedeploy: endpoint exists → deleted"},
		{"autoscaled within its range", func(o *releases.Observation) { o.InstanceCount, o.AutoscaleMin, o.AutoscaleMax = 4, 1, 4 }, ""},
		{"autoscaled beyond its range", func(o *releases.Observation) { o.InstanceCount, o.AutoscaleMin, o.AutoscaleMax = 6, 1, 4 },
			"changed outside sagedeploy: instances 2 → 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := same
			tc.obs(&o)
			diffs := releases.Compare(rec, o)
			got := ""
			if len(diffs) > 0 {
				got = releases.Drift{Differences: diffs}.Summary()
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
