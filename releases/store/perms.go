package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// The data dir holds the database with password hashes, session and token hashes, and the audit
// log: only its owner may read it. sagedeploy creates it 0700, but an existing dir keeps whatever
// mode it had, and SQLite creates its files with the umask's mode (usually 0644). So at every
// start the dir is made 0700 and the database files 0600, with a warning when that changed them.

// sqliteFiles are the database file and the files SQLite keeps beside it.
var sqliteFiles = [...]string{SQLiteFile, SQLiteFile + "-wal", SQLiteFile + "-shm", SQLiteFile + "-journal"}

// secureDataDir tightens the data dir and its database files, and makes sure a new database file
// is created 0600 (SQLite gives its -wal and -shm files the mode of the database file).
func secureDataDir(dir string, log *slog.Logger) error {
	if err := tighten(dir, 0o700, log); err != nil {
		return err
	}
	for _, name := range sqliteFiles {
		if err := tighten(filepath.Join(dir, name), 0o600, log); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, SQLiteFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file in %s: %w", dir, err)
	}
	return f.Close()
}

// tighten takes from path every permission beyond want; a missing path is fine.
func tighten(path string, want fs.FileMode, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check permissions of %s: %w", path, err)
	}
	have := fi.Mode().Perm()
	if have&^want == 0 {
		return nil
	}
	if err := os.Chmod(path, have&want); err != nil {
		return fmt.Errorf("%s has mode %s, open to other users, and sagedeploy cannot change it: %w; run chmod %o %s", path, have, err, want, path)
	}
	log.Warn("the release server's data was open to other users; permissions fixed", "path", path, "was", have.String(), "now", (have & want).String())
	return nil
}
