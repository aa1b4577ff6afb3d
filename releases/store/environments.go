package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/sagedeploy/sagedeploy/releases"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

// ValidName reports whether s can name a user: letters, digits, - and _, up to 63.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// PutEnvironment creates the environment, or updates it when one of that name exists.
func (s *Store) PutEnvironment(ctx context.Context, e releases.Environment) error {
	if err := releases.CheckEnvironmentName(e.Name); err != nil {
		return fromDomain(err)
	}
	if e.Kind != "local" && e.Kind != "sagemaker" {
		return errf(ErrInvalid, "environment %s: kind %q is not valid: use sagemaker (AWS) or local (sagedeploy local)", e.Name, e.Kind)
	}
	_, err := s.exec(ctx, `INSERT INTO environments (name, kind, region, account, endpoint_url, requires_approval, allow_self_approval, ordinal, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, region = excluded.region, account = excluded.account,
			endpoint_url = excluded.endpoint_url, requires_approval = excluded.requires_approval,
			allow_self_approval = excluded.allow_self_approval, ordinal = excluded.ordinal`,
		e.Name, e.Kind, e.Region, e.Account, e.EndpointURL, b2i(e.RequiresApproval), b2i(e.AllowSelfApproval), e.Position, micros(s.Now()))
	if err != nil {
		return fmt.Errorf("save environment %s: %w", e.Name, err)
	}
	return nil
}

// Environment reads one environment.
func (s *Store) Environment(ctx context.Context, name string) (releases.Environment, error) {
	e, err := scanEnvironment(s.row(ctx, `SELECT `+envCols+` FROM environments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return e, s.unknownEnvironment(ctx, name)
	}
	if err != nil {
		return e, fmt.Errorf("read environment %s: %w", name, err)
	}
	return e, nil
}

// unknownEnvironment explains a missing environment, listing those that exist.
func (s *Store) unknownEnvironment(ctx context.Context, name string) error {
	envs, _ := s.Environments(ctx)
	var names []string
	for _, e := range envs {
		names = append(names, e.Name)
	}
	known := "none exist yet"
	if len(names) > 0 {
		known = "known environments: " + strings.Join(names, ", ")
	}
	return errf(ErrNotFound, "environment %q does not exist on this release server (%s); an admin adds it in Settings or with `sagedeploy server env add %s --kind sagemaker --region ...`", name, known, name)
}

// Environments lists environments in pipeline order.
func (s *Store) Environments(ctx context.Context) ([]releases.Environment, error) {
	out, err := queryAll(ctx, s, scanEnvironment, `SELECT `+envCols+` FROM environments ORDER BY ordinal, name`)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	return out, nil
}

// NextEnvironment returns the environment after name in pipeline order (the promotion target).
func (s *Store) NextEnvironment(ctx context.Context, name string) (releases.Environment, error) {
	envs, err := s.Environments(ctx)
	if err != nil {
		return releases.Environment{}, err
	}
	for i, e := range envs {
		if e.Name == name {
			if i+1 < len(envs) {
				return envs[i+1], nil
			}
			return releases.Environment{}, errf(ErrNotFound, "environment %s is the last one in the pipeline: there is no next environment to promote to", name)
		}
	}
	return releases.Environment{}, s.unknownEnvironment(ctx, name)
}

type scanner interface{ Scan(dest ...any) error }

const envCols = `name, kind, region, account, endpoint_url, requires_approval, allow_self_approval, ordinal`

func scanEnvironment(r scanner) (releases.Environment, error) {
	var e releases.Environment
	var approval, self int
	err := r.Scan(&e.Name, &e.Kind, &e.Region, &e.Account, &e.EndpointURL, &approval, &self, &e.Position)
	e.RequiresApproval, e.AllowSelfApproval = approval != 0, self != 0
	return e, err
}

// ConsoleURL is where a person looks at an endpoint: the AWS console for SageMaker environments,
// the local SageMaker otherwise.
func ConsoleURL(e releases.Environment, endpoint string) string {
	if e.Kind == "sagemaker" {
		region := e.Region
		if region == "" {
			region = "us-east-1"
		}
		return fmt.Sprintf("https://%s.console.aws.amazon.com/sagemaker/home?region=%s#/endpoints/%s", region, region, url.PathEscape(endpoint))
	}
	// The local SageMaker has no per-endpoint page; its URL is where the endpoint answers.
	return e.EndpointURL
}
