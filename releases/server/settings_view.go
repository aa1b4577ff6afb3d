package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// settingsPage is the settings page, flat (see views.go).
type settingsPage struct {
	NewToken *secretShown
	NewUser  *newUser
	Envs     []envRow
	EnvCount int
	Tokens   []tokenRow
	Members  []memberRow
	Notify   notifyView
}

// secretShown is a token or webhook just created, with its secret (shown once).
type secretShown struct{ Environment, Name, Secret string }

// newUser is a user just added, or whose password was reset, with the password (shown once).
type newUser struct {
	Name, Password string
	Reset          bool
}

type envRow struct {
	Name, Kind, Where, Account string
	Gate, SelfApproval         bool
	Position                   int
	AgentSeen                  string // how long ago an agent asked for work, "" when none did
}

type tokenRow struct {
	ID, Environment, Name, Hint string
	Created, CreatedAgo         string
	CreatedBy                   string
	LastUsed                    string // "" when never used
	Revoked                     string // when it was revoked, "" when it is valid
}

type memberRow struct {
	Name, Role, Since string
	You               bool
	Sessions          int
}

// notifyView is the webhooks part of the settings page.
type notifyView struct {
	NewWebhook *secretShown // Name and Secret of a webhook just added
	Hooks      []hookRow
	Kinds      []string
	CanSign    bool
	Log        []deliveryRow
}

type hookRow struct{ ID, Name, Environment, Events, Format, URL, Hint string }

type deliveryRow struct {
	DeliveryID, Created, Ago string
	WebhookName, Kind        string
	EventID                  string
	Attempt, StatusCode      int
	OK                       bool // answered with a 2xx status
	Error, State             string
}

// renderSettings shows the settings page from what settingsData read.
func (s dashboard) renderSettings(w http.ResponseWriter, r *http.Request, se *session, d settingsData) {
	now := s.st.Now()
	p := settingsPage{NewUser: d.NewUser, EnvCount: len(d.Envs), Notify: notifyViewOf(now, d.Notify)}
	if t := d.NewToken; t != nil {
		p.NewToken = &secretShown{Environment: t.Environment, Name: t.Name, Secret: t.Secret}
	}
	for _, e := range d.Envs {
		p.Envs = append(p.Envs, envRowOf(now, e))
	}
	for _, t := range d.Tokens {
		row := tokenRow{ID: t.ID, Environment: t.Environment, Name: t.Name, Hint: t.Hint, Created: whenText(t.CreatedAt),
			CreatedAgo: ago(now, t.CreatedAt), CreatedBy: t.CreatedBy}
		if t.LastUsedAt != nil {
			row.LastUsed = ago(now, *t.LastUsedAt)
		}
		if t.RevokedAt != nil {
			row.Revoked = ago(now, *t.RevokedAt)
		}
		p.Tokens = append(p.Tokens, row)
	}
	for _, m := range d.Members {
		p.Members = append(p.Members, memberRow{Name: m.Name, Role: m.Role, Since: ago(now, m.CreatedAt), You: m.Name == se.user.Name, Sessions: m.Sessions})
	}
	s.render(w, r, http.StatusOK, "settings", se, pageData{Title: "Settings", Nav: "settings", Data: p})
}

func envRowOf(now time.Time, e EnvironmentView) envRow {
	row := envRow{Name: e.Name, Kind: string(e.Kind), Where: e.Region, Account: e.Account, Gate: e.RequiresApproval,
		SelfApproval: e.AllowSelfApproval, Position: e.Position}
	if e.Kind == releases.EnvironmentLocal {
		row.Where = e.EndpointURL
	}
	if e.AgentLastSeen != nil {
		row.AgentSeen = ago(now, *e.AgentLastSeen)
	}
	return row
}

func notifyViewOf(now time.Time, n webhookSettings) notifyView {
	v := notifyView{CanSign: n.CanSign}
	if h := n.NewWebhook; h != nil {
		v.NewWebhook = &secretShown{Name: h.Name, Secret: h.Secret}
	}
	for _, h := range n.Hooks {
		events := make([]string, len(h.Events))
		for i, k := range h.Events {
			events[i] = string(k)
		}
		v.Hooks = append(v.Hooks, hookRow{ID: h.ID, Name: h.Name, Environment: h.Environment, Events: strings.Join(events, ", "),
			Format: h.Format, URL: h.URL, Hint: h.Hint})
	}
	for _, k := range n.Kinds {
		v.Kinds = append(v.Kinds, string(k))
	}
	for _, a := range n.Log {
		v.Log = append(v.Log, deliveryRowOf(now, a))
	}
	return v
}

func deliveryRowOf(now time.Time, a store.AttemptEntry) deliveryRow {
	return deliveryRow{DeliveryID: a.DeliveryID, Created: whenText(a.Time), Ago: ago(now, a.Time), WebhookName: a.WebhookName,
		Kind: string(a.Kind), EventID: a.EventID, Attempt: a.Attempt, StatusCode: a.StatusCode,
		OK: a.StatusCode >= 200 && a.StatusCode < 300, Error: a.Error, State: a.State}
}
