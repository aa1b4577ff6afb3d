package server

import (
	"cmp"
	"context"
	"errors"
	"net/http"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// servingSide is one side of an approval's comparison: a version, the endpoint configuration that
// serves it and its instances.
type servingSide struct {
	Version       *releases.Version `json:"version,omitempty"`
	Config        string            `json:"endpoint_config,omitempty"`
	InstanceType  string            `json:"instance_type,omitempty"`
	InstanceCount int               `json:"instance_count"`
}

// approvalView is a release waiting at a gate with what its environment serves now beside what it
// would serve once approved, so that the approver sees the change, not just its name.
type approvalView struct {
	store.ReleaseRecord
	Now      servingSide `json:"now"`
	Proposed servingSide `json:"proposed"`
}

// Changes reports which rows of the comparison differ, for highlighting.
func (a approvalView) Changes() map[string]bool {
	n, p := a.Now, a.Proposed
	return map[string]bool{
		"version":   n.Version == nil || p.Version == nil || n.Version.Number != p.Version.Number,
		"config":    p.Config != "" && n.Config != p.Config,
		"instances": (p.InstanceCount > 0 && n.InstanceCount != p.InstanceCount) || (p.InstanceType != "" && n.InstanceType != p.InstanceType),
	}
}

func (s dashboard) approvalsPage(w http.ResponseWriter, r *http.Request, se session) error {
	list, err := s.st.PendingApprovals(r.Context())
	if err != nil {
		return err
	}
	now := s.st.Now()
	cards := make([]approvalCard, 0, len(list))
	for _, rec := range list {
		v, err := s.Server.approvalView(r.Context(), rec)
		if err != nil {
			return err
		}
		cards = append(cards, approvalCardOf(now, v, se.user.Name))
	}
	s.render(w, r, http.StatusOK, "approvals", &se, pageData{Title: "Approvals", Nav: "approvals", Data: cards, Pending: len(list), pendingRead: true})
	return nil
}

// approvalView reads what rec's component serves now: its version and instances from the
// component, its endpoint configuration from the newest release that succeeded there.
func (s *Server) approvalView(ctx context.Context, rec store.ReleaseRecord) (approvalView, error) {
	v := approvalView{ReleaseRecord: rec, Proposed: servingSide{Version: &rec.Version, Config: rec.EndpointConfigName,
		InstanceType: rec.InstanceType, InstanceCount: rec.InstanceCount}}
	c, err := s.st.Component(ctx, rec.Environment, rec.Model)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return v, nil // never deployed there: nothing serves now
	case err != nil:
		return v, err
	}
	v.Now = servingSide{Version: c.CurrentVersion, InstanceType: c.InstanceType, InstanceCount: c.InstanceCount}
	last, err := s.st.ListReleases(ctx, store.ReleaseFilter{Environment: rec.Environment, Model: rec.Model, Status: releases.StatusSucceeded, Limit: 1})
	if err != nil {
		return v, err
	}
	if len(last.Releases) > 0 {
		v.Now.Config = last.Releases[0].EndpointConfigName
	}
	// A release that names no instances keeps the target's.
	v.Proposed.InstanceType = cmp.Or(v.Proposed.InstanceType, c.InstanceType)
	v.Proposed.InstanceCount = cmp.Or(v.Proposed.InstanceCount, c.InstanceCount)
	return v, nil
}
