package cli_test

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/internal/cli"
)

// Every command a user runs shows examples in its help.
func TestEveryCommandHasExamples(t *testing.T) {
	root := cli.NewRootCommand(strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !c.Hidden && c.Name() != "help" && c.Name() != "completion" && strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no Example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// A mistyped flag is answered with the flag meant.
func TestMistypedFlagsGetSuggestions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "--environment", "dev"}, "Did you mean --env?"},
		{[]string{"deploy", "--instance-cout", "2"}, "Did you mean --instance-count?"},
		{[]string{"scale", "--instance", "2"}, "Did you mean --instances?"},
		{[]string{"releases", "list", "--stauts", "pending"}, "Did you mean --status?"},
	} {
		r := dpRun(t, map[string]string{}, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("sagedeploy %s: exit %d, stderr %q; want a usage error with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}
