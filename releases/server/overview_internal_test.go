package server

import (
	"slices"
	"testing"
)

// Model names with numbers sort the way people count, so that bulk10 does not sit between bulk1
// and bulk2 on the overview.
func TestNaturalCompare(t *testing.T) {
	got := []string{"bulk10", "bulk2", "abalone", "bulk1", "bulk02", "Bulk3", "bulk100", "bulk", "churn-v2", "churn-v10", "churn-v1b", "x99999999999999999999999"}
	slices.SortFunc(got, naturalCompare)
	want := []string{"Bulk3", "abalone", "bulk", "bulk1", "bulk2", "bulk02", "bulk10", "bulk100", "churn-v1b", "churn-v2", "churn-v10", "x99999999999999999999999"}
	if !slices.Equal(got, want) {
		t.Fatalf("sorted: %v\nwant:   %v", got, want)
	}
	if naturalCompare("bulk7", "bulk7") != 0 {
		t.Fatal("a name does not equal itself")
	}
}

func TestMatchesModel(t *testing.T) {
	for _, tc := range []struct {
		model, q string
		want     bool
	}{{"abalone", "", true}, {"abalone", "BAL", true}, {"churn", "abalone", false}, {"bulk19", "bulk1", true}} {
		if got := matchesModel(tc.model, tc.q); got != tc.want {
			t.Errorf("matchesModel(%q, %q) = %v", tc.model, tc.q, got)
		}
	}
}
