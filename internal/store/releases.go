package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/pem"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// The release bundles installed at this region.

const (
	qReleaseInsert = `INSERT INTO releases (id, bundle, installed) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`
	qReleaseByID   = `SELECT id, bundle, installed FROM releases WHERE id = $1`
	qReleases      = `SELECT id, bundle, installed FROM releases ORDER BY installed, id`
	qReleaseExists = `SELECT 1 FROM releases WHERE id = $1`
)

func scanRelease(sc scanner) (release.Installation, error) {
	var r release.Installation
	err := sc.Scan(&r.ID, &r.Bundle, timeValue{&r.Installed})
	return r, err
}

// InstallRelease stores a release bundle, with rec. It is idempotent:
// installing the same bytes under the same ID again returns the release as
// first installed (with its first Installed time), and records rec (the
// call succeeded). A different bundle under an installed ID → ErrConflict.
// The bundle is stored as given: the caller verifies it (release.Open)
// before installing it. Two nodes installing the same release at once both
// succeed: the second insert waits for the first and does nothing.
func (s *Store) InstallRelease(ctx context.Context, r release.Installation, rec audit.Entry) (release.Installation, error) {
	r, err := checkRelease(r)
	if err != nil {
		return release.Installation{}, err
	}
	var got release.Installation
	err = s.change(ctx, "installing a release", rec, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, qReleaseInsert, r.ID, r.Bundle, s.d.Time(r.Installed)); err != nil {
			return err
		}
		var err error
		if got, err = scanRelease(tx.QueryRowContext(ctx, qReleaseByID, r.ID)); err != nil {
			return err
		}
		if !bytes.Equal(got.Bundle, r.Bundle) {
			return Errorf(ErrConflict, "release %s is installed with a different bundle", r.ID)
		}
		return nil
	})
	if err != nil {
		return release.Installation{}, err
	}
	return got, nil
}

// Releases lists the installed releases, oldest first (then by ID).
func (s *Store) Releases(ctx context.Context) ([]release.Installation, error) {
	rows, err := s.db.QueryContext(ctx, qReleases)
	rs, err := collect(rows, err, scanRelease)
	return rs, s.dbErr("listing releases", err)
}

// releaseInstalled returns ErrNotFound unless release id is installed.
func (s *Store) releaseInstalled(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, qReleaseExists, id).Scan(&one)
	if noRows(err) {
		return Errorf(ErrNotFound, "release %s is not installed", id)
	}
	return err
}

// checkRelease validates r and returns it as the store keeps it (Installed
// per Time). The bundle must be one or more PEM blocks, at most MaxBundle
// bytes; the store does not verify it.
func checkRelease(r release.Installation) (release.Installation, error) {
	if err := ValidReleaseID(r.ID); err != nil {
		return release.Installation{}, err
	}
	if len(r.Bundle) == 0 || len(r.Bundle) > MaxBundle {
		return release.Installation{}, invalidf("release %s: the bundle must be 1 to %d bytes, not %d", r.ID, MaxBundle, len(r.Bundle))
	}
	if b, _ := pem.Decode(r.Bundle); b == nil {
		return release.Installation{}, invalidf("release %s: the bundle is not PEM: install the bundle file as received", r.ID)
	}
	var err error
	if r.Installed, err = CheckTime("release installation", r.Installed); err != nil {
		return release.Installation{}, err
	}
	return r, nil
}
