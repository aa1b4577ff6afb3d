package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// webhookRoutes registers notifications: webhooks in the JSON API and on the settings page
// (admins only), and the drift report of agents.
func (s *Server) webhookRoutes(m *http.ServeMux) {
	a, d := jsonAPI{s}, dashboard{s}
	m.HandleFunc("GET /api/v1/webhooks", s.api(a.apiWebhooks))
	m.HandleFunc("POST /api/v1/webhooks", s.api(a.apiAddWebhook))
	m.HandleFunc("DELETE /api/v1/webhooks/{id}", s.api(a.apiRemoveWebhook))
	m.HandleFunc("POST /api/v1/webhooks/{id}/test", s.api(a.apiTestWebhook))
	m.HandleFunc("GET /api/v1/webhooks/deliveries", s.api(a.apiDeliveryLog))
	m.HandleFunc("POST /api/v1/drift", s.api(a.apiReportDrift))
	m.HandleFunc("POST /settings/webhooks", d.page(d.addWebhookForm))
	m.HandleFunc("POST /settings/webhooks/{id}/remove", d.page(d.removeWebhookForm))
	m.HandleFunc("POST /settings/webhooks/{id}/test", d.page(d.testWebhookForm))
}

// webhookSettings is the webhooks part of the settings page.
type webhookSettings struct {
	Hooks      []store.Webhook
	Log        []store.AttemptEntry
	Kinds      []store.EventKind
	NewWebhook *NewWebhook
	CanSign    bool
}

// NewWebhook is a webhook just added, with its secret (shown once).
type NewWebhook struct {
	store.Webhook
	Secret string `json:"secret"`
}

func (s *Server) webhookSettings(ctx context.Context) (webhookSettings, error) {
	w := webhookSettings{Kinds: store.EventKinds(), CanSign: len(s.sender.opts.Key) > 0}
	var err error
	if w.Hooks, err = s.st.Webhooks(ctx); err != nil {
		return w, err
	}
	w.Log, err = s.st.DeliveryLog(ctx, 20)
	return w, err
}

func (s jsonAPI) apiWebhooks(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage webhooks"); err != nil {
		return err
	}
	list, err := s.st.Webhooks(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": nonNil(list)})
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s jsonAPI) apiAddWebhook(w http.ResponseWriter, r *http.Request, p principal) error {
	var spec WebhookSpec
	if err := decodeJSON(r, &spec, "the webhook"); err != nil {
		return err
	}
	if err := missing("the webhook", missingIf(spec.URL == "", "url"), `{"name": "ops", "url": "https://hooks.example.com/sagedeploy", "environment": "prod", "events": "all"}`); err != nil {
		return err
	}
	nw, err := s.addWebhook(r, p, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, nw)
	return nil
}

func (s jsonAPI) apiRemoveWebhook(w http.ResponseWriter, r *http.Request, p principal) error {
	wh, err := s.removeWebhook(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": wh})
	return nil
}

func (s jsonAPI) apiTestWebhook(w http.ResponseWriter, r *http.Request, p principal) error {
	d, err := s.testWebhook(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s jsonAPI) apiDeliveryLog(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "read the webhook delivery log"); err != nil {
		return err
	}
	log, err := s.st.DeliveryLog(r.Context(), 200)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"attempts": nonNil(log)})
	return nil
}

// apiReportDrift is how another tool says that an endpoint serves something other than what the
// server recorded; subscribers of "drift.detected" hear of it. The agent's observations reach
// the same webhooks through driftDetected.
func (s jsonAPI) apiReportDrift(w http.ResponseWriter, r *http.Request, p principal) error {
	var body struct {
		Environment    string            `json:"environment"`
		Model          string            `json:"model"`
		Message        string            `json:"message"`
		ServingVersion *releases.Version `json:"serving_version"`
	}
	if err := decodeJSON(r, &body, "the drift report"); err != nil {
		return err
	}
	miss := append(missingIf(body.Environment == "", "environment"), missingIf(body.Model == "", "model")...)
	if err := missing("the drift report", miss, `{"environment": "prod", "model": "abalone", "message": "endpoint abalone-prod serves config x, not y"}`); err != nil {
		return err
	}
	if err := p.canCommand(body.Environment, "report drift"); err != nil {
		return err
	}
	msg := body.Message
	if msg == "" {
		msg = fmt.Sprintf("the endpoint of %s in %s serves something other than what sagedeploy recorded", body.Model, body.Environment)
	}
	n, err := s.st.NotifyDrift(r.Context(), body.Environment, body.Model, msg, body.ServingVersion)
	s.audit(r, p.name(), "drift.report", body.Environment, body.Model, "", outcomeOf(s.Server, r, err), msg)
	if err != nil {
		return err
	}
	s.notify.signal(outboxKey)
	writeJSON(w, http.StatusAccepted, n)
	return nil
}

func (s *Server) addWebhook(r *http.Request, p principal, spec WebhookSpec) (NewWebhook, error) {
	if err := p.needRole(store.RoleAdmin, "manage webhooks"); err != nil {
		return NewWebhook{}, err
	}
	secret, wh, err := CreateWebhook(r.Context(), s.st, s.sender.opts.Key, spec, p.name())
	s.audit(r, p.name(), "webhook.add", spec.Environment, "", wh.ID, outcomeOf(s, r, err),
		fmt.Sprintf("name=%s url=%s format=%s events=%s", spec.Name, spec.URL, spec.Format, spec.Events))
	return NewWebhook{Webhook: wh, Secret: secret}, err
}

func (s *Server) removeWebhook(r *http.Request, p principal, id string) (store.Webhook, error) {
	if err := p.needRole(store.RoleAdmin, "manage webhooks"); err != nil {
		return store.Webhook{}, err
	}
	wh, err := s.st.RemoveWebhook(r.Context(), id)
	s.audit(r, p.name(), "webhook.remove", wh.Environment, "", id, outcomeOf(s, r, err), "name="+wh.Name)
	return wh, err
}

func (s *Server) testWebhook(r *http.Request, p principal, id string) (store.Delivery, error) {
	if err := p.needRole(store.RoleAdmin, "test webhooks"); err != nil {
		return store.Delivery{}, err
	}
	d, err := SendTest(r.Context(), s.st, s.sender.opts, s.sender.baseURL, id)
	s.audit(r, p.name(), "webhook.test", "", "", id, outcomeOf(s, r, err), fmt.Sprintf("status=%d %s", d.LastStatus, d.LastError))
	return d, err
}

func (s dashboard) addWebhookForm(w http.ResponseWriter, r *http.Request, se session) error {
	f := r.PostForm
	spec := WebhookSpec{Name: strings.TrimSpace(f.Get("name")), URL: strings.TrimSpace(f.Get("url")), Format: f.Get("format"),
		Environment: f.Get("environment"), Events: strings.Join(f["events"], ",")}
	if spec.Events == "" {
		spec.Events = "none" // an empty selection is a mistake, not "all"
	}
	nw, err := s.addWebhook(r, se.principal(), spec)
	if err != nil {
		redirectFlash(w, r, "/settings#webhooks", s.publicMessage(r, err), true)
		return nil
	}
	d, err := s.settingsData(r, se)
	if err != nil {
		return err
	}
	d.Notify.NewWebhook = &nw // the secret is shown in this answer only
	s.renderSettings(w, r, &se, d)
	return nil
}

func (s dashboard) removeWebhookForm(w http.ResponseWriter, r *http.Request, se session) error {
	wh, err := s.removeWebhook(r, se.principal(), r.PathValue("id"))
	if err != nil {
		redirectFlash(w, r, "/settings#webhooks", s.publicMessage(r, err), true)
		return nil
	}
	redirectFlash(w, r, "/settings#webhooks", "Webhook "+wh.Name+" removed.", false)
	return nil
}

func (s dashboard) testWebhookForm(w http.ResponseWriter, r *http.Request, se session) error {
	d, err := s.testWebhook(r, se.principal(), r.PathValue("id"))
	if err != nil {
		redirectFlash(w, r, "/settings#webhooks", s.publicMessage(r, err), true)
		return nil
	}
	if d.State != store.DeliveryDelivered {
		redirectFlash(w, r, "/settings#webhooks", fmt.Sprintf("Test to %s failed: %s", d.Webhook.Name, d.LastError), true)
		return nil
	}
	redirectFlash(w, r, "/settings#webhooks", fmt.Sprintf("Test to %s delivered (HTTP %d).", d.Webhook.Name, d.LastStatus), false)
	return nil
}
