package cli

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Lists print as aligned columns on text output, and as one JSON array with -o json — [] for
// none, which scripts can iterate over, never null.
func TestListsPrintAsTablesOrJSON(t *testing.T) {
	envs := []releases.Environment{
		{Name: "dev", Kind: releases.EnvironmentLocal, EndpointURL: "http://127.0.0.1:4570"},
		{Name: "prod", Kind: releases.EnvironmentSageMaker, Region: "eu-west-1", Position: 1, RequiresApproval: true},
	}
	var text bytes.Buffer
	if err := printList(&text, "text", envs, envColumns()); err != nil {
		t.Fatal(err)
	}
	want := "POSITION  NAME  KIND       REGION/URL             APPROVAL\n" +
		"0         dev   local      http://127.0.0.1:4570  false\n" +
		"1         prod  sagemaker  eu-west-1              true\n"
	if text.String() != want {
		t.Errorf("env list =\n%s\nwant\n%s", text.String(), want)
	}
	var none bytes.Buffer
	if err := printList(&none, "json", []store.Token(nil), tokenColumns()); err != nil || none.String() != "[]\n" {
		t.Errorf("no tokens as JSON = %q (%v), want []", none.String(), err)
	}
	used := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var toks bytes.Buffer
	_ = printList(&toks, "text", []store.Token{{ID: "t1", Environment: "dev", Name: "ci", Hint: "sdt_ab", CreatedAt: used, LastUsedAt: &used}}, tokenColumns())
	if want := "ID  ENVIRONMENT  NAME  TOKEN    CREATED              LAST USED            STATE\n" +
		"t1  dev          ci    sdt_ab…  2026-01-02 03:04:05  2026-01-02 03:04:05  active\n"; toks.String() != want {
		t.Errorf("token list =\n%q\nwant\n%q", toks.String(), want)
	}
}

// A failed command's -o json is still one document: its result with the error beside it.
func TestEmitJSONCarriesTheError(t *testing.T) {
	var out bytes.Buffer
	failed := errors.New("endpoint abalone-prod does not exist")
	err := emit(&out, "json", deploy.HistoryResult{Endpoint: "abalone-prod", Entries: []deploy.HistoryEntry{}}, failed, nil)
	if !errors.Is(err, failed) {
		t.Errorf("emit returned %v, want the command's error", err)
	}
	if want := `{"endpoint":"abalone-prod","entries":[],"error":"endpoint abalone-prod does not exist"}` + "\n"; out.String() != want {
		t.Errorf("json = %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := emit(&out, "text", deploy.HistoryResult{}, failed, func(w io.Writer) { t.Error("text rendered for a failed command") }); !errors.Is(err, failed) {
		t.Errorf("emit returned %v", err)
	}
}
