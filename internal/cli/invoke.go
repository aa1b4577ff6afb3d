package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newInvokeCmd(g *globals) *cobra.Command {
	var body, contentType, accept, variant string
	cmd := &cobra.Command{
		Use:   "invoke",
		Short: "Call an environment's endpoint and print the answer",
		Long: `Send a request to the environment's endpoint and print the answer on stdout, and the
production variant that answered on stderr. --body is @FILE, - for stdin, or the literal body.`,
		Example: `  sagedeploy invoke --model abalone --env dev --body @sample.csv --content-type text/csv`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	tf := bindTarget(c.b, "environment")
	c.b.str(&body, "body", "", "request body: @FILE, - (stdin) or a literal")
	c.b.str(&contentType, "content-type", "text/csv", "request content type")
	c.b.str(&accept, "accept", "", "content type to ask for in the answer")
	c.b.str(&variant, "variant", "", "send to this production variant")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if tf.endpointName == "" {
			if err := c.needModel(); err != nil {
				return err
			}
			if tf.env == "" {
				return usageErr(errors.New("invoke needs --env (or DEPLOY_ENVIRONMENT) or --endpoint-name"))
			}
		}
		if body == "" {
			return usageErr(errors.New("invoke needs --body (@FILE, - for stdin, or the body itself)"))
		}
		data, err := readBody(body, g.stdin, false)
		if err != nil {
			return usageErr(fmt.Errorf("--body: %w", err))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Invoke(ctx, deploy.InvokeRequest{Model: c.model, Environment: tf.env, EndpointName: tf.endpointName, Body: data,
				ContentType: contentType, Accept: accept, TargetVariant: variant})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				io.WriteString(w, res.Body)
				if !strings.HasSuffix(res.Body, "\n") {
					io.WriteString(w, "\n")
				}
				fmt.Fprintf(g.stderr, "answered by variant %s of %s\n", res.Variant, res.Endpoint)
			})
		})
	}
	return cmd
}
