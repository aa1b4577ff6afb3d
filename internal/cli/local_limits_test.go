package cli

import "testing"

// TestLocalDefaultLimits: `sagedeploy local` defaults to SageMaker's invocation limit, 6 MiB
// (6291456 bytes, not 6,000,000), caps artifacts at 4 GiB, and allows no CORS origin.
func TestLocalDefaultLimits(t *testing.T) {
	f := newLocalCmd(newGlobals(Process{LookupEnv: EnvMap(nil)})).Flags()
	for flag, want := range map[string]int64{"max-body-size": 6291456, "max-model-size": 4 << 30} {
		got, err := parseSize(f.Lookup(flag).DefValue)
		if err != nil || got != want {
			t.Errorf("--%s defaults to %q = %d (%v); want %d bytes", flag, f.Lookup(flag).DefValue, got, err, want)
		}
	}
	if d := f.Lookup("s3-cors-origin").DefValue; d != "" {
		t.Errorf("--s3-cors-origin defaults to %q; want no origin", d)
	}
}
