package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/pipeline"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func newPipelineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Check and apply the pipeline file, " + pipeline.FileName,
		Long: `The pipeline file, sagedeploy.yaml in your repository, lists the environments in order and,
for each, its region, the role to assume (another account), endpoint naming, instances,
strategy, verification, approval gate and endpoint settings. The deployer's commands find it
upward from the working directory (or take --pipeline FILE); flags and the orb's environment
variables override it. An environment not in the file is refused before any AWS call.`,
	}
	cmd.AddCommand(newPipelineValidateCmd(g), newPipelineSchemaCmd(g), newPipelineInitCmd(g), newPipelineApplyCmd(g))
	return cmd
}

// pipelinePath is the file the pipeline commands act on: the one given, else the one found.
func pipelinePath(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	p, err := pipeline.Find(wd)
	if errors.Is(err, pipeline.ErrNotFound) {
		return "", usageErr(fmt.Errorf("%w: pass --pipeline FILE, or write one with `sagedeploy pipeline init`", err))
	}
	return p, err
}

// validation is `pipeline validate -o json`.
type validation struct {
	File         string             `json:"file"`
	Valid        bool               `json:"valid"`
	Problems     []pipeline.Problem `json:"problems"`
	Environments []string           `json:"environments,omitempty"`
}

func newPipelineValidateCmd(g *globals) *cobra.Command {
	var path, output string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the pipeline file; every problem names its line",
		Example: `  sagedeploy pipeline validate
  sagedeploy pipeline validate --pipeline deploy/sagedeploy.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pipelinePath(path)
			if err != nil {
				return err
			}
			f, err := pipeline.Load(p)
			v := validation{File: p, Valid: err == nil, Problems: []pipeline.Problem{}}
			var ps pipeline.Problems
			switch {
			case errors.As(err, &ps):
				v.Problems = ps
				err = usageErr(fmt.Errorf("%s has %d problem(s)", p, len(ps)))
			case err != nil:
				return err
			default:
				v.Environments = f.Names()
			}
			if output != "json" {
				validationText(g.stdout, v, f) // the problems are the answer, not only the error
				return err
			}
			return emit(g.stdout, output, v, err, nil)
		},
	}
	cmd.Flags().StringVar(&path, "pipeline", g.getenv("SAGEDEPLOY_PIPELINE"), "pipeline file (default: "+pipeline.FileName+" here or above; env SAGEDEPLOY_PIPELINE)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func validationText(w io.Writer, v validation, f *pipeline.File) {
	if !v.Valid {
		for _, p := range v.Problems {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	var envs []string
	for _, e := range f.Environments {
		s := e.Name
		if e.Gated() {
			s += " (approval)"
		}
		envs = append(envs, s)
	}
	fmt.Fprintf(w, "%s is valid: %s\n", v.File, strings.Join(envs, " → "))
}

func newPipelineSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the pipeline file's JSON Schema, for editors",
		Example: `  sagedeploy pipeline schema > .sagedeploy.schema.json
  # then, first line of sagedeploy.yaml: # yaml-language-server: $schema=.sagedeploy.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := g.stdout.Write(pipeline.Schema)
			return err
		},
	}
}

func newPipelineInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "init",
		Short:   "Write an example " + pipeline.FileName + " (dev, then a gated prod in another account)",
		Example: `  sagedeploy pipeline init && $EDITOR sagedeploy.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f, err := os.OpenFile(pipeline.FileName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, os.ErrExist) {
				return usageErr(fmt.Errorf("%s exists already: edit it, or check it with `sagedeploy pipeline validate`", pipeline.FileName))
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(pipeline.Example); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s: edit the environments, then run `sagedeploy pipeline validate`\n", pipeline.FileName)
			return nil
		},
	}
}

func newPipelineApplyCmd(g *globals) *cobra.Command {
	var path string
	sf := &storeFlags{}
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Define the release server's environments and gates from the pipeline file",
		Long: `Save each environment of the pipeline file on the release server: kind (local when it has an
endpoint_url), region, account, position in the pipeline and whether it needs an approval.
Environments the file does not name are left as they are. "sagedeploy server --pipeline FILE"
does the same at every start.`,
		Example: `  sagedeploy pipeline apply --data-dir /var/lib/sagedeploy
  sagedeploy pipeline apply --pipeline sagedeploy.yaml --database-url postgres://...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pipelinePath(path)
			if err != nil {
				return err
			}
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				return applyPipeline(cmd.Context(), g, st, p)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "pipeline", g.getenv("SAGEDEPLOY_PIPELINE"), "pipeline file (default: "+pipeline.FileName+" here or above; env SAGEDEPLOY_PIPELINE)")
	f.StringVar(&sf.dataDir, "data-dir", defaultDataDir(g), "directory of the release server's SQLite database (env SAGEDEPLOY_DATA_DIR)")
	f.StringVar(&sf.databaseURL, "database-url", g.getenv("SAGEDEPLOY_DATABASE_URL"), "PostgreSQL URL instead of SQLite (env SAGEDEPLOY_DATABASE_URL)")
	return cmd
}

// applyPipeline saves the environments of the pipeline file at path in the release server's store.
func applyPipeline(ctx context.Context, g *globals, st *store.Store, path string) error {
	f, err := loadPipeline(path)
	if err != nil {
		return err
	}
	if f == nil {
		return usageErr(errors.New("no pipeline file to apply: pass --pipeline FILE"))
	}
	for _, e := range serverEnvironments(f) {
		if err := server.EnsureEnvironment(ctx, st, e); err != nil {
			return fmt.Errorf("save environment %s of %s: %w", e.Name, path, err)
		}
		g.auditCLI(ctx, st, store.AuditEntry{Action: "environment.save", Environment: e.Name, Target: e.Name, Outcome: "ok",
			Detail: fmt.Sprintf("from %s: kind=%s region=%s approval=%t position=%d", path, e.Kind, e.Region, e.RequiresApproval, e.Position)})
	}
	fmt.Fprintf(g.stdout, "Environments from %s saved: %s\n", path, strings.Join(f.Names(), " → "))
	return nil
}
