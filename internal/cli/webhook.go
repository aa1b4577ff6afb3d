package cli

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func newWebhookCmd(g *globals, sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Notify people and systems of releases, approvals waiting and drift",
		Long: `Webhooks send events — release started, succeeded, failed, rolled back, waiting for approval,
drift detected — of one environment (or all) as a signed JSON event or a Slack incoming-webhook
message. Deliveries are kept in the database until the receiver answers 2xx, retried with
exponential backoff, and survive restarts of the server.

The JSON event carries X-Sagedeploy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
with the webhook's secret (shown once, at add), and X-Sagedeploy-Event-Id, the same at every
attempt: refuse old timestamps and drop event ids already seen. Secrets are stored encrypted
with the key ` + server.WebhookKeyFile + ` in the data dir; servers sharing one Postgres need the same key file.`,
	}
	cmd.AddCommand(newWebhookAddCmd(g, sf), newWebhookListCmd(g, sf), newWebhookRemoveCmd(g, sf), newWebhookTestCmd(g, sf))
	return cmd
}

func newWebhookAddCmd(g *globals, sf *storeFlags) *cobra.Command {
	var spec server.WebhookSpec
	var output string
	add := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook and print its signing secret (once)",
		Example: "  sagedeploy server webhook add https://hooks.example.com/sagedeploy --name ops --env prod\n" +
			"  sagedeploy server webhook add https://hooks.slack.com/services/T/B/X --format slack --events failed,rolled_back,waiting_for_approval",
		Args: argsNamed(1, "the receiver's URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := server.LoadWebhookKey(sf.dataDir)
			if err != nil {
				return err
			}
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				spec.URL = args[0]
				secret, w, err := server.CreateWebhook(cmd.Context(), st, key, spec, "cli:"+g.osUserName())
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "webhook.add", Environment: w.Environment, Target: w.ID, Outcome: "ok", Detail: "url=" + w.URL})
				if output == "json" {
					return writeJSONLine(g.stdout, server.NewWebhook{Webhook: w, Secret: secret})
				}
				fmt.Fprintf(g.stdout, "%s\n", secret)
				fmt.Fprintf(g.stderr, "Webhook %s (%s) sends %s of %s to %s. Its signing secret is shown only this once.\n",
					w.ID, w.Name, kindsText(w.Events), cmpEnv(w.Environment), w.URL)
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&spec.Name, "name", "", "a name to recognise the webhook by")
	f.StringVar(&spec.Environment, "env", "", "only events of this environment (default: all)")
	f.StringVar(&spec.Format, "format", store.FormatJSON, "json (signed event) or slack (incoming webhook)")
	f.StringVar(&spec.Events, "events", "all", "comma-separated: started, succeeded, failed, rolled_back, waiting_for_approval, drift.detected, or all")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return add
}

func kindsText(ks []store.EventKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func cmpEnv(env string) string {
	if env == "" {
		return "every environment"
	}
	return "environment " + env
}

func newWebhookListCmd(g *globals, sf *storeFlags) *cobra.Command {
	var output string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List webhooks (never their secrets)",
		Example: "  sagedeploy server webhook list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				hooks, err := st.Webhooks(cmd.Context())
				if err != nil {
					return err
				}
				return printList(g.stdout, output, hooks, columns[store.Webhook]{
					header: []string{"ID", "NAME", "ENVIRONMENT", "FORMAT", "EVENTS", "URL", "CREATED"},
					row: func(w store.Webhook) []string {
						return []string{w.ID, w.Name, cmp.Or(w.Environment, "all"), w.Format, kindsText(w.Events), w.URL, w.CreatedAt.Format(time.DateTime)}
					},
				})
			})
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return list
}

func newWebhookRemoveCmd(g *globals, sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove ID",
		Short:   "Remove a webhook; its deliveries not yet sent are dropped",
		Example: "  sagedeploy server webhook remove 01931f2c-...",
		Args:    argsNamed(1, "the id of the webhook (see `sagedeploy server webhook list`)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				w, err := st.RemoveWebhook(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "webhook.remove", Environment: w.Environment, Target: w.ID, Outcome: "ok", Detail: "name=" + w.Name})
				fmt.Fprintf(g.stdout, "Removed webhook %s (%s).\n", w.ID, w.Name)
				return nil
			})
		},
	}
}

func newWebhookTestCmd(g *globals, sf *storeFlags) *cobra.Command {
	var baseURL, output string
	test := &cobra.Command{
		Use:     "test ID",
		Short:   "Send a test event to a webhook now and show what the receiver answered",
		Example: "  sagedeploy server webhook test 01931f2c-...",
		Args:    argsNamed(1, "the id of the webhook (see `sagedeploy server webhook list`)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := server.LoadWebhookKey(sf.dataDir)
			if err != nil {
				return err
			}
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				d, err := server.SendTest(cmd.Context(), st, server.WebhookOptions{Key: key}, baseURL, args[0])
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "webhook.test", Target: d.Webhook.ID, Outcome: d.State, Detail: fmt.Sprintf("status=%d %s", d.LastStatus, d.LastError)})
				if output == "json" {
					return writeJSONLine(g.stdout, d)
				}
				if d.State != store.DeliveryDelivered {
					return fmt.Errorf("test event to webhook %s (%s) failed: %s", d.Webhook.ID, d.Webhook.URL, d.LastError)
				}
				fmt.Fprintf(g.stdout, "Delivered test event %s to %s: HTTP %d.\n", d.EventID, d.Webhook.URL, d.LastStatus)
				return nil
			})
		},
	}
	test.Flags().StringVar(&baseURL, "base-url", "", "the server's URL, for links in the message")
	test.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return test
}
