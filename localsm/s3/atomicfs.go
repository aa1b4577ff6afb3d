package s3

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path"

	"github.com/spf13/afero"
)

// tmpDir holds files being written; it is emptied on open, since anything left there is an
// upload a crash interrupted.
const tmpDir = "tmp"

// atomicFs makes each file written from scratch (Create, or OpenFile with O_CREATE|O_TRUNC)
// appear under its name only once it is complete: it is written to tmp/, synced and renamed into
// place on Close. A crash mid-upload thus leaves the previous object (or none), never a torn one;
// gofakes3's afero backend writes objects and their metadata in place otherwise.
type atomicFs struct{ afero.Fs }

func newAtomicFs(base afero.Fs) (atomicFs, error) {
	if err := base.RemoveAll(tmpDir); err != nil {
		return atomicFs{}, err
	}
	if err := base.MkdirAll(tmpDir, 0o700); err != nil {
		return atomicFs{}, err
	}
	return atomicFs{base}, nil
}

func (a atomicFs) Create(name string) (afero.File, error) {
	return a.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (a atomicFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if flag&os.O_CREATE == 0 || flag&os.O_TRUNC == 0 || flag&os.O_APPEND != 0 {
		return a.Fs.OpenFile(name, flag, perm)
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tmp := path.Join(tmpDir, hex.EncodeToString(rnd[:]))
	f, err := a.Fs.OpenFile(tmp, (flag&^os.O_TRUNC)|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, fs: a.Fs, tmp: tmp, final: name}, nil
}

type atomicFile struct {
	afero.File
	fs         afero.Fs
	tmp, final string
	closed     bool
}

// Close makes the file durable and moves it into place. Closing twice is harmless.
func (f *atomicFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	err := errors.Join(f.File.Sync(), f.File.Close())
	if err == nil {
		err = f.fs.Rename(f.tmp, f.final)
	}
	if err != nil {
		_ = f.fs.Remove(f.tmp)
	}
	return err
}

func (f *atomicFile) Name() string { return f.final }
