package releases_test

import (
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
)

func TestNamesFollowSageMakersRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"abalone", true},
		{"churn-v2", true},
		{"A1--b", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-abalone", false},
		{"abalone-", false},
		{"a_b", false},
		{"a/b", false},
		{"<script>", false},
		{"a b", false},
		{"a.b", false},
	} {
		for what, check := range map[string]func(string) error{"model": releases.CheckModelName, "environment": releases.CheckEnvironmentName} {
			err := check(tc.name)
			if (err == nil) != tc.ok {
				t.Errorf("%s name %q: error %v; want ok=%v", what, tc.name, err, tc.ok)
			}
			if err != nil && (releases.ErrorCode(err) != releases.EINVALID || !strings.Contains(err.Error(), what+" name") || !strings.Contains(err.Error(), "letters, digits and hyphens")) {
				t.Errorf("%s name %q: error %q does not explain the rule", what, tc.name, err)
			}
		}
	}
}
