package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagAliases are names people reach for that sagedeploy spells otherwise.
var flagAliases = map[string]string{"environment": "env", "environment-name": "env", "instances-count": "instance-count", "model-name": "model"}

// flagError turns pflag's "unknown flag: --enviroment" into a usage error that suggests the
// flag meant, as cobra suggests mistyped commands.
func flagError(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return usageErr(err)
	}
	name, _, _ = strings.Cut(name, "=")
	if best := closestFlag(cmd, name); best != "" {
		return usageErr(fmt.Errorf("%w\nDid you mean --%s? (see `%s --help`)", err, best, cmd.CommandPath()))
	}
	return usageErr(fmt.Errorf("%w (see `%s --help`)", err, cmd.CommandPath()))
}

// closestFlag is the command's flag nearest to name: a known alias, a flag name starts with, or
// one within two edits.
func closestFlag(cmd *cobra.Command, name string) string {
	names := map[string]bool{}
	collect := func(f *pflag.Flag) {
		if !f.Hidden {
			names[f.Name] = true
		}
	}
	cmd.Flags().VisitAll(collect)
	cmd.InheritedFlags().VisitAll(collect)
	if a, ok := flagAliases[name]; ok && names[a] {
		return a
	}
	best, bestDist := "", 3
	for n := range names {
		d := editDistance(name, n)
		if strings.HasPrefix(n, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist || d == bestDist && n < best {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
