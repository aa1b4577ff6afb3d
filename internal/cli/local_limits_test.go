package cli

import (
	"runtime/debug"
	"testing"
)

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

// sagedeploy local and up collect garbage less often (GOGC 400), unless the user's GOGC says
// otherwise, which the Go runtime has then applied already.
func TestLocalGCLeavesTheUsersGOGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	localGC(&globals{lookupEnv: EnvMap(nil)})
	if got := debug.SetGCPercent(100); got != localGCPercent {
		t.Errorf("GOGC after localGC = %d, want %d", got, localGCPercent)
	}
	localGC(&globals{lookupEnv: EnvMap(map[string]string{"GOGC": "50"})})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("localGC changed GOGC to %d although the environment sets it", got)
	}
}
