// Command sagedeploy deploys machine-learning models to SageMaker endpoints across environments,
// tracks every release, and runs a local SageMaker for development and tests.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sagedeploy/sagedeploy/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
