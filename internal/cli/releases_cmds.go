package cli

import "github.com/spf13/cobra"

// addReleaseCommands registers this group's commands on root. Placeholder until the group lands.
func addReleaseCommands(root *cobra.Command, g *globals) {}
