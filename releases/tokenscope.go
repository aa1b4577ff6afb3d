package releases

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// TokenInfo is what the release server knows of the integration token a client holds.
type TokenInfo struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
}

// TokenScope asks the server which environment the client's token belongs to. Deployers that are
// not told their environment use it: CircleCI's aws-sagemaker orb dropped deploy_environment in
// 1.0.5 because its release integration token already names one.
func (c *Client) TokenScope(ctx context.Context) (TokenInfo, error) {
	var me struct {
		Kind        string `json:"kind"`
		Name        string `json:"name"`
		Environment string `json:"environment"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, &me, 30*time.Second); err != nil {
		return TokenInfo{}, fmt.Errorf("ask the release server at %s which environment the token is for: %w", c.base, err)
	}
	if me.Kind != "token" || me.Environment == "" {
		return TokenInfo{}, fmt.Errorf("the release server at %s takes these credentials for %s %q, not an integration token of an environment", c.base, me.Kind, me.Name)
	}
	return TokenInfo{Name: me.Name, Environment: me.Environment}, nil
}
