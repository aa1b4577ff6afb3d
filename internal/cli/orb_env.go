package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/sagedeploy/sagedeploy/releases"
)

// releasesToken is the release server token of the job: ours, or the one CircleCI's orb used.
func (g *globals) releasesToken() string {
	return cmp.Or(g.getenv("SAGEDEPLOY_RELEASES_TOKEN"), g.getenv("CCI_RELEASE_INTEGRATION_TOKEN"))
}

// environmentFor returns the environment a command acts on: --env or DEPLOY_ENVIRONMENT when
// given, else the one the release token belongs to. CircleCI's aws-sagemaker orb removed
// deploy_environment in 1.0.5 because its release integration token is scoped to an environment;
// pipelines written for it set no environment at all.
func (c *conn) environmentFor(ctx context.Context, g *globals, env string) (string, error) {
	if env != "" {
		return env, nil
	}
	token := g.releasesToken()
	if token == "" {
		return "", usageErr(errors.New("no environment given: set --env or DEPLOY_ENVIRONMENT (e.g. dev), or SAGEDEPLOY_RELEASES_URL " +
			"and an environment's release token in SAGEDEPLOY_RELEASES_TOKEN or CCI_RELEASE_INTEGRATION_TOKEN"))
	}
	if c.releasesURL == "" {
		return "", usageErr(errors.New("no environment given: set --env or DEPLOY_ENVIRONMENT (e.g. dev), or set SAGEDEPLOY_RELEASES_URL " +
			"to your release server so that the environment of the release token is used"))
	}
	scope, err := releases.NewClient(c.releasesURL, token, nil).TokenScope(ctx)
	if err != nil {
		err = fmt.Errorf("no environment given (--env or DEPLOY_ENVIRONMENT), and the release token's cannot be read: %w", err)
		if _, refused := errors.AsType[*releases.APIError](err); refused {
			return "", usageErr(err)
		}
		return "", err
	}
	g.logger().Info("environment taken from the release token", "environment", scope.Environment, "token", scope.Name)
	c.env = scope.Environment
	return scope.Environment, c.pipe.defaults(c.b.cmd, c.b, c.model, scope.Environment)
}
