package allinone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Token names the stack gives the integration tokens it makes.
const (
	agentTokenName    = "sagedeploy-up-agent"
	deployerTokenName = "sagedeploy-up-deployer"
	tokenCreator      = "sagedeploy up"
)

// tokenFile is DATA_DIR/tokens.json: the deployer tokens the stack made, by environment. The
// store keeps only hashes; the secret of a deployer token is kept here (mode 0600, in the 0700
// data dir) because the user exported it from the first start's message and the stack's own
// deployers must report with the same token after a restart. Agent tokens are never written
// anywhere: the agent lives in this process, so each start makes new ones and revokes the last.
type tokenFile struct {
	Deployer map[string]string `json:"deployer"`
}

func (s *Stack) tokenPath() string { return filepath.Join(s.opts.DataDir, "tokens.json") }

// readTokens reads the kept deployer tokens. A file of an older sagedeploy that also holds agent
// tokens in clear is rewritten without them.
func readTokens(path string) (tokenFile, error) {
	t := tokenFile{Deployer: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("read the stack's tokens: %w", err)
	}
	var raw map[string]map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return t, writeTokens(path, t) // a damaged file only costs new tokens; don't leave its secrets
	}
	for env, secret := range raw["deployer"] {
		t.Deployer[env] = secret
	}
	if len(raw) > 1 || (len(raw) == 1 && raw["deployer"] == nil) {
		return t, writeTokens(path, t)
	}
	return t, nil
}

func writeTokens(path string, t tokenFile) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("keep the stack's tokens: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keep the stack's tokens: %w", err)
	}
	return nil
}

// deployerToken returns the stack's deployer token of env: the kept one while the store still
// accepts it for env, else a new one (the user may have revoked it in Settings). created says
// whether it was made now, so that its secret is shown once.
func (s *Stack) deployerToken(ctx context.Context, env string) (secret string, created bool, err error) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if secret := s.tokens.Deployer[env]; secret != "" {
		t, err := s.store.TokenByHash(ctx, server.HashToken(secret))
		if err == nil && t.Environment == env {
			return secret, s.newTokens[env], nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", false, fmt.Errorf("check the deployer token of %s: %w", env, err)
		}
	}
	secret, _, err = server.CreateToken(ctx, s.store, env, deployerTokenName, tokenCreator)
	if err != nil {
		return "", false, fmt.Errorf("create the deployer token of %s: %w", env, err)
	}
	s.tokens.Deployer[env] = secret
	s.newTokens[env] = true
	return secret, true, writeTokens(s.tokenPath(), s.tokens)
}

// agentToken makes this start's agent token of env and revokes the agent tokens earlier starts
// made, which nothing holds any more (commands they took but never started go back to the queue).
func (s *Stack) agentToken(ctx context.Context, env string) (string, error) {
	old, err := s.store.Tokens(ctx)
	if err != nil {
		return "", err
	}
	for _, t := range old {
		if t.Environment == env && t.Name == agentTokenName && t.CreatedBy == tokenCreator && t.RevokedAt == nil {
			if _, err := s.store.RevokeToken(ctx, t.ID); err != nil && !errors.Is(err, store.ErrConflict) {
				return "", fmt.Errorf("revoke the last agent token of %s: %w", env, err)
			}
		}
	}
	secret, _, err := server.CreateToken(ctx, s.store, env, agentTokenName, tokenCreator)
	if err != nil {
		return "", fmt.Errorf("create the agent token of %s: %w", env, err)
	}
	return secret, nil
}

// isLoopbackURL reports whether u points at this machine, as the local SageMaker of an earlier
// start did.
func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
