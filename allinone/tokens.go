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

// tokenFile is DATA_DIR/tokens.json: the integration tokens the stack made for itself, by use
// ("agent", "deployer") and environment. The store keeps only their hashes, so the secrets live
// here (mode 0600) to survive restarts without piling up new tokens at every start.
type tokenFile map[string]map[string]string

func (s *Stack) tokenPath() string { return filepath.Join(s.opts.DataDir, "tokens.json") }

func readTokens(path string) (tokenFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return tokenFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the stack's tokens: %w", err)
	}
	var t tokenFile
	if err := json.Unmarshal(b, &t); err != nil || t == nil {
		// A damaged file only costs new tokens.
		return tokenFile{}, nil
	}
	return t, nil
}

// token returns the stack's token of use in env: the kept one while the store still accepts it
// for env, else a new one (the user may have revoked it in Settings).
func (s *Stack) token(ctx context.Context, use, env string) (string, error) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if secret := s.tokens[use][env]; secret != "" {
		t, err := s.store.TokenByHash(ctx, server.HashToken(secret))
		if err == nil && t.Environment == env {
			return secret, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("check the %s token of %s: %w", use, env, err)
		}
	}
	secret, _, err := server.CreateToken(ctx, s.store, env, "sagedeploy-up-"+use, "sagedeploy up")
	if err != nil {
		return "", fmt.Errorf("create the %s token of %s: %w", use, env, err)
	}
	if s.tokens[use] == nil {
		s.tokens[use] = map[string]string{}
	}
	s.tokens[use][env] = secret
	b, err := json.MarshalIndent(s.tokens, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := s.tokenPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("keep the stack's tokens: %w", err)
	}
	if err := os.Rename(tmp, s.tokenPath()); err != nil {
		return "", fmt.Errorf("keep the stack's tokens: %w", err)
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
