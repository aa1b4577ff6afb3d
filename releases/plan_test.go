package releases_test

import (
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
)

func comp(env string, current int, opts ...func(*releases.Component)) releases.Component {
	c := releases.Component{Environment: env, Model: "abalone", EndpointName: "abalone-" + env, InstanceType: "ml.m5.large",
		InstanceCount: 1, RestoreEnabled: true, ScaleEnabled: true}
	if current > 0 {
		c.CurrentVersion = &releases.Version{Number: current}
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func noRestore(c *releases.Component) { c.RestoreEnabled = false }
func noScale(c *releases.Component)   { c.ScaleEnabled = false }

func TestCommandRequestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    releases.CommandRequest
		code string
	}{
		{"restore with a version", releases.CommandRequest{Kind: releases.CommandRestore, Environment: "dev", Model: "abalone", Version: 2}, ""},
		{"restore without a version", releases.CommandRequest{Kind: releases.CommandRestore, Environment: "dev", Model: "abalone"}, releases.EINVALID},
		{"scale to 2", releases.CommandRequest{Kind: releases.CommandScale, Environment: "dev", Model: "abalone", Instances: 2}, ""},
		{"scale to 0", releases.CommandRequest{Kind: releases.CommandScale, Environment: "dev", Model: "abalone"}, releases.EINVALID},
		{"scale past the bound", releases.CommandRequest{Kind: releases.CommandScale, Environment: "dev", Model: "abalone", Instances: releases.MaxInstances + 1}, releases.EINVALID},
		{"rollback", releases.CommandRequest{Kind: releases.CommandRollback, Environment: "dev", Model: "abalone"}, ""},
		{"promote", releases.CommandRequest{Kind: releases.CommandPromote, Environment: "dev", Model: "abalone"}, ""},
		{"no model", releases.CommandRequest{Kind: releases.CommandPromote, Environment: "dev"}, releases.EINVALID},
		{"unknown kind", releases.CommandRequest{Kind: "explode", Environment: "dev", Model: "abalone"}, releases.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.q.Check(), tc.code) })
	}
}

func TestPlanOnComponent(t *testing.T) {
	restore := releases.CommandRequest{Kind: releases.CommandRestore, Environment: "dev", Model: "abalone", Version: 2, RequestedBy: "dan"}
	scale := releases.CommandRequest{Kind: releases.CommandScale, Environment: "dev", Model: "abalone", Instances: 3}
	rollback := releases.CommandRequest{Kind: releases.CommandRollback, Environment: "dev", Model: "abalone"}
	v2 := releases.Version{Number: 2}
	notFound := releases.Errorf(releases.ENOTFOUND, "no earlier version to roll back to")
	for _, tc := range []struct {
		name  string
		plan  func() (releases.Command, releases.Release, error)
		kind  releases.Kind
		code  string
		parts []string
	}{
		{"restore", func() (releases.Command, releases.Release, error) {
			return releases.PlanRestore(restore, comp("dev", 3), v2)
		}, releases.KindRestore, "", nil},
		{"restore disabled", func() (releases.Command, releases.Release, error) {
			return releases.PlanRestore(restore, comp("dev", 3, noRestore), v2)
		}, "", releases.ECONFLICT, []string{"enable_restore_version=false"}},
		{"restore what already serves", func() (releases.Command, releases.Release, error) {
			return releases.PlanRestore(restore, comp("dev", 2), v2)
		}, "", releases.ECONFLICT, []string{"already serves version 2"}},
		{"rollback", func() (releases.Command, releases.Release, error) {
			return releases.PlanRollback(rollback, comp("dev", 3), v2, nil)
		}, releases.KindRollback, "", nil},
		{"rollback without history", func() (releases.Command, releases.Release, error) {
			return releases.PlanRollback(rollback, comp("dev", 3), releases.Version{}, notFound)
		}, "", releases.ECONFLICT, []string{"no earlier version"}},
		{"rollback disabled", func() (releases.Command, releases.Release, error) {
			return releases.PlanRollback(rollback, comp("dev", 3, noRestore), v2, nil)
		}, "", releases.ECONFLICT, []string{"rolling back is disabled"}},
		{"scale", func() (releases.Command, releases.Release, error) { return releases.PlanScale(scale, comp("dev", 3)) }, releases.KindScale, "", nil},
		{"scale disabled", func() (releases.Command, releases.Release, error) {
			return releases.PlanScale(scale, comp("dev", 3, noScale))
		}, "", releases.ECONFLICT, []string{"enable_scaling_component=false"}},
		{"scale to the same count", func() (releases.Command, releases.Release, error) {
			return releases.PlanScale(scale, comp("dev", 3, func(c *releases.Component) { c.InstanceCount = 3 }))
		}, "", releases.ECONFLICT, []string{"already runs 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, rel, err := tc.plan()
			wantErr(t, err, tc.code, tc.parts...)
			if err == nil && (rel.Kind != tc.kind || rel.Environment != "dev" || cmd.Environment != "dev" || rel.PreviousVersion == nil || rel.PreviousVersion.Number != 3) {
				t.Fatalf("planned %+v / %+v", cmd, rel)
			}
		})
	}
}

func TestPlanPromote(t *testing.T) {
	q := releases.CommandRequest{Kind: releases.CommandPromote, Environment: "dev", Model: "abalone"}
	prodC := comp("prod", 1, func(c *releases.Component) { c.InstanceCount = 4 })
	sameC := comp("prod", 3)
	for _, tc := range []struct {
		name  string
		from  releases.Component
		into  *releases.Component
		to    releases.Environment
		gated bool
		code  string
	}{
		{"into a gated environment it was never in", comp("dev", 3), nil, gat, true, ""},
		{"into an open environment", comp("dev", 3), &prodC, releases.Environment{Name: "prod"}, false, ""},
		{"nothing to promote", comp("dev", 0), nil, gat, false, releases.ECONFLICT},
		{"into itself", comp("dev", 3), nil, dev, false, releases.EINVALID},
		{"already there", comp("dev", 3), &sameC, gat, false, releases.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, rel, gated, err := releases.PlanPromote(q, tc.from, tc.to, tc.into)
			wantErr(t, err, tc.code)
			if err != nil {
				return
			}
			if gated != tc.gated || cmd.Environment != tc.to.Name || cmd.FromEnvironment != "dev" || rel.Kind != releases.KindPromote || rel.Version.Number != 3 {
				t.Fatalf("planned %+v / %+v, gated %v", cmd, rel, gated)
			}
			if tc.into != nil && (rel.InstanceCount != 4 || rel.PreviousVersion == nil || rel.PreviousVersion.Number != 1) {
				t.Fatalf("the target's endpoint was not kept: %+v", rel)
			}
			if tc.into == nil && (rel.EndpointName != "abalone-prod" || rel.PreviousVersion != nil) {
				t.Fatalf("a first promotion: %+v", rel)
			}
		})
	}
}
