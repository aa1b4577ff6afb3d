package cli

import "github.com/spf13/cobra"

// addLocalCommands registers this group's commands on root. Placeholder until the group lands.
func addLocalCommands(root *cobra.Command, g *globals) {}
