package releases_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// A deployer that is not told its environment learns it from its token, as the aws-sagemaker orb
// 1.0.5 does; a revoked token is refused with the server's reason.
func TestTokenScopeNamesTheTokensEnvironment(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	for _, env := range []string{"dev", "prod"} {
		got, err := e.Client(env).TokenScope(ctx)
		if err != nil {
			t.Fatalf("token of %s: %v", env, err)
		}
		if got.Environment != env || got.Name != env+"-test" {
			t.Errorf("token of %s: scope %+v", env, got)
		}
	}

	var list struct {
		Tokens []struct {
			ID          string `json:"id"`
			Environment string `json:"environment"`
		} `json:"tokens"`
	}
	e.Do(http.MethodGet, "/api/v1/tokens", e.Admin(), nil).JSON(t, &list)
	for _, tok := range list.Tokens {
		if tok.Environment == "dev" {
			if r := e.Do(http.MethodPost, "/api/v1/tokens/"+tok.ID+"/revoke", e.Admin(), nil); r.Status != http.StatusOK {
				t.Fatalf("revoke the dev token: HTTP %d %s", r.Status, r.Error())
			}
		}
	}
	_, err := e.Client("dev").TokenScope(ctx)
	var apiErr *releases.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked token: %v", err)
	}
}
