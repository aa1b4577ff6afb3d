package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases/store"
)

func signIn(t *testing.T, s *store.Store, user, id string) {
	t.Helper()
	now := s.Now()
	if err := s.CreateSession(ctx, store.Session{IDHash: id, Username: user, CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func signedIn(s *store.Store, id string) bool {
	_, _, err := s.Session(ctx, id)
	return err == nil
}

// TestUserChangesEndTheirSessions: `server user list|role|password|remove` round-trip, and each
// change of a user signs that user (and nobody else) out at once.
func TestUserChangesEndTheirSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		for _, u := range []store.User{{Name: "admin", Role: store.RoleAdmin}, {Name: "carol", Role: store.RoleDeployer}, {Name: "dave", Role: store.RoleViewer}} {
			u.PasswordHash = "h-" + u.Name
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		signIn(t, s, "carol", "carol-1")
		signIn(t, s, "carol", "carol-2")
		signIn(t, s, "dave", "dave-1")
		list, err := s.UserList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || list[1].Name != "carol" || list[1].Sessions != 2 || list[2].Sessions != 1 {
			t.Fatalf("user list = %+v, want admin, carol (2 sessions), dave (1)", list)
		}

		if n, err := s.SetUserPassword(ctx, "carol", "h-new"); err != nil || n != 2 {
			t.Fatalf("password reset of carol: ended %d sessions, err %v; want 2", n, err)
		}
		if signedIn(s, "carol-1") || signedIn(s, "carol-2") || !signedIn(s, "dave-1") {
			t.Fatal("a password reset must end that user's sessions, and only theirs")
		}
		if u, _ := s.User(ctx, "carol"); u.PasswordHash != "h-new" {
			t.Fatalf("carol's password hash = %q, want the new one", u.PasswordHash)
		}

		signIn(t, s, "carol", "carol-3")
		if n, err := s.SetUserRole(ctx, "carol", store.RoleViewer); err != nil || n != 1 {
			t.Fatalf("role change of carol: ended %d, err %v", n, err)
		}
		if u, _ := s.User(ctx, "carol"); u.Role != store.RoleViewer || signedIn(s, "carol-3") {
			t.Fatalf("after the role change carol is %s (want viewer) and signed in: %v", u.Role, signedIn(s, "carol-3"))
		}

		if n, err := s.RemoveUser(ctx, "dave"); err != nil || n != 1 {
			t.Fatalf("remove dave: ended %d, err %v", n, err)
		}
		if _, err := s.User(ctx, "dave"); !errors.Is(err, store.ErrNotFound) || signedIn(s, "dave-1") {
			t.Fatalf("removed dave: read err %v, signed in %v", err, signedIn(s, "dave-1"))
		}
		if _, err := s.RemoveUser(ctx, "dave"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("removing a removed user: %v, want not found", err)
		}
	})
}

// TestLastAdminIsKept: removing or demoting the only admin would leave nobody able to manage the
// server; with a second admin it is allowed.
func TestLastAdminIsKept(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		if err := s.CreateUser(ctx, store.User{Name: "admin", Role: store.RoleAdmin, PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RemoveUser(ctx, "admin"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("removing the last admin: %v, want a conflict", err)
		}
		if _, err := s.SetUserRole(ctx, "admin", store.RoleDeployer); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("demoting the last admin: %v, want a conflict", err)
		}
		if _, err := s.SetUserRole(ctx, "admin", "root"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("unknown role: %v, want invalid", err)
		}
		if err := s.CreateUser(ctx, store.User{Name: "erin", Role: store.RoleAdmin, PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetUserRole(ctx, "admin", store.RoleDeployer); err != nil {
			t.Fatalf("demoting one of two admins: %v", err)
		}
		if _, err := s.RemoveUser(ctx, "erin"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("removing the admin left: %v, want a conflict", err)
		}
	})
}
