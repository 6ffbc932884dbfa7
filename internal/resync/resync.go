// Package resync is the re-encryption job behind `strongroom sync`: it
// moves the ciphertexts in columns of a user's own SQLite or PostgreSQL
// table from archived key versions to the active one, through the
// server's rewrap (POST /v1/tenants/{tenant}/rewrap), so that the
// plaintext never reaches the machine that runs it, and reports which key
// versions the table's data still uses (docs/sync.md).
//
// The job walks the table in primary-key order, a batch of rows at a
// time. For each batch it sends the values that are not under the active
// version to rewrap, then writes the new ciphertexts back in one
// transaction, each with a compare-and-swap (`UPDATE … WHERE key = $k AND
// col = $old`) so that a value the application changed meanwhile is left
// alone. After each committed batch it writes a checkpoint file
// atomically (internal/atomicfile): the last primary key done and the
// counts so far. A run that is killed at any moment and started again
// resumes after the checkpoint; the batch in flight is read again, and
// since rewrap returns a value already under the active key unchanged, no
// value is ever wrapped twice and none is lost. A run that completes
// removes its checkpoint.
//
// The SQL is plain database/sql over the drivers the store already uses
// (modernc.org/sqlite, pgx); the rate limit is golang.org/x/time/rate.
package resync

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"golang.org/x/time/rate"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/atomicfile"
	"github.com/strongroom-kms/strongroom/internal/envelope"
)

// Rewrapper is the server's rewrap (client.Client.Rewrap).
type Rewrapper interface {
	Rewrap(ctx context.Context, tenant string, items ...api.RewrapItem) ([]api.RewrapResult, error)
}

// Reporter records data-at-rest censuses on the server
// (client.Client.ReportDataAtRest).
type Reporter interface {
	ReportDataAtRest(ctx context.Context, tenant string, req api.DataReportRequest) ([]api.KeyUsage, error)
}

// Progress hears how far the job is. Start gives the rows to go (the
// table's rows after the checkpoint) once; Add the rows done as each batch
// commits.
type Progress interface {
	Start(total int64)
	Add(rows int64)
}

// Job is one sync of a table.
type Job struct {
	Tenant string // the tenant's name
	// DSN is the user's database: sqlite:PATH (the file must exist) or
	// postgres://…
	DSN     string
	Table   string   // [schema.]table
	Key     string   // the primary-key column (unique, never NULL; default id)
	Columns []string // the ciphertext columns
	// Context is bound to every value, as KEY=VALUE pairs given to
	// encrypt; ContextColumns adds, for each context key, the value of a
	// column of the same row (as text; NULL is "").
	Context        map[string]string
	ContextColumns map[string]string
	Batch          int     // rows per batch, and values per rewrap call (default 100)
	Rate           float64 // rows per second at most; 0 = no limit
	// Checkpoint is the checkpoint file; "" = no resuming.
	Checkpoint string
	// DryRun reads and counts only: no rewrap, no write, no checkpoint.
	DryRun   bool
	Rewrap   Rewrapper
	Progress Progress // nil = none
	// Report, if set, receives the final pass's counts as a data-at-rest
	// census of the dataset, per key type found (none when some values
	// could not be read): the server's key usage then knows what this
	// table still holds under each version. Dataset names it (default
	// TABLE(COLUMNS)).
	Report  Reporter
	Dataset string
}

// Count is what the job did with the values of one key version.
type Count struct {
	Values int64            `json:"values"`           // values found under it when read
	Moved  int64            `json:"moved"`            // moved from it to the active version
	Errors map[string]int64 `json:"errors,omitempty"` // refused by the server: API code → values
}

// Report is the result of a job, also kept in its checkpoint.
type Report struct {
	Rows     int64 `json:"rows"`     // rows read
	Values   int64 `json:"values"`   // non-NULL values read
	Moved    int64 `json:"moved"`    // values rewrapped and written back
	Conflict int64 `json:"conflict"` // values the application changed meanwhile (left as they are)
	// Malformed values are not Strongroom ciphertexts (or not base64 in a
	// text column).
	Malformed int64 `json:"malformed"`
	// Versions counts by key version ("data/1"); Active is the active
	// version of each type the server named ("data" → 2), unknown in a dry
	// run.
	Versions map[string]*Count `json:"versions"`
	Active   map[string]uint32 `json:"active"`
	// Remaining is what a read-only pass over the whole table found after
	// the job: the values under each version, and those it could not read
	// (Unreadable). Only it decides "safe to destroy": a version with none
	// left, in a table with nothing unreadable. Not in a dry run.
	Remaining  map[string]int64 `json:"remaining,omitempty"`
	Unreadable int64            `json:"unreadable"`
	// Rotated: the active version of a type changed during the job, so
	// values it had passed under the one before may be left: run it again.
	Rotated bool `json:"rotated,omitempty"`
	// Reported lists the key types whose census the server recorded;
	// ReportError says why none was sent, or what the server answered.
	Reported    []string `json:"reported,omitempty"`
	ReportError string   `json:"report_error,omitempty"`
	Resumed     bool     `json:"resumed"` // the job went on from a checkpoint
	DryRun      bool     `json:"dry_run"`
}

// checkpoint is the checkpoint file's content.
type checkpoint struct {
	Format int    `json:"format"` // 1
	Job    string `json:"job"`    // Job.fingerprint: a checkpoint resumes only its own job
	// After is the last primary key done, in JSON; Kind is how to read
	// it back: int, text or bytes.
	After  json.RawMessage `json:"after"`
	Kind   string          `json:"kind"`
	Report Report          `json:"report"`
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// quote quotes a [schema.]name for SQL, after checking that each part is a
// plain identifier: the names come from flags, never from data.
func quote(what, name string, dotted bool) (string, error) {
	parts := []string{name}
	if dotted {
		parts = strings.Split(name, ".")
	}
	if len(parts) > 2 {
		return "", fmt.Errorf("resync: %s %q: at most schema.name", what, name)
	}
	for i, p := range parts {
		if !identifier.MatchString(p) {
			return "", fmt.Errorf("resync: %s %q is not a plain SQL identifier (letters, digits, _; not starting with a digit)", what, name)
		}
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, "."), nil
}

// sqlNames are the job's quoted names.
type sqlNames struct {
	table, key string
	cols       []string
	ctxKeys    []string // context keys of ContextColumns, sorted
	ctxCols    []string // their quoted columns, in the same order
}

func (j *Job) names() (sqlNames, error) {
	var n sqlNames
	var err error
	if n.table, err = quote("table", j.Table, true); err != nil {
		return n, err
	}
	if n.key, err = quote("key column", j.Key, false); err != nil {
		return n, err
	}
	if len(j.Columns) == 0 {
		return n, errors.New("resync: no ciphertext column")
	}
	for _, c := range j.Columns {
		if c == j.Key {
			return n, fmt.Errorf("resync: column %q is the primary key", c)
		}
		q, err := quote("column", c, false)
		if err != nil {
			return n, err
		}
		if slices.Contains(n.cols, q) {
			return n, fmt.Errorf("resync: column %q given twice", c)
		}
		n.cols = append(n.cols, q)
	}
	for k := range j.ContextColumns {
		if _, dup := j.Context[k]; dup {
			return n, fmt.Errorf("resync: context key %q given as a value and as a column", k)
		}
		n.ctxKeys = append(n.ctxKeys, k)
	}
	sort.Strings(n.ctxKeys)
	for _, k := range n.ctxKeys {
		q, err := quote("context column", j.ContextColumns[k], false)
		if err != nil {
			return n, err
		}
		n.ctxCols = append(n.ctxCols, q)
	}
	return n, nil
}

// fingerprint names the job in its checkpoint: the tenant, the database
// (hashed: a DSN may hold a password), the table, its columns and the
// context.
func (j *Job) fingerprint() string {
	h := sha256.New()
	b, _ := json.Marshal([]any{j.Tenant, j.DSN, j.Table, j.Key, j.Columns, j.Context, j.ContextColumns})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// open opens the user's database.
func open(dsn string) (*sql.DB, string, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#%") {
			return nil, "", errors.New("resync: sqlite:PATH names a database file, without options (and without ?, # or %)")
		}
		if _, err := os.Stat(path); err != nil {
			return nil, "", fmt.Errorf("resync: the database %s: %w", path, err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)")
		if err != nil {
			return nil, "", fmt.Errorf("resync: %w", err)
		}
		return db, "sqlite", nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, "", errors.New("resync: the PostgreSQL URL does not parse")
		}
		if _, has := u.User.Password(); has || u.Query().Has("password") || u.Query().Has("sslpassword") {
			return nil, "", errors.New("resync: the PostgreSQL URL holds a password, which command lines and checkpoints must not: put it in PGPASSWORD or a PGPASSFILE")
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, "", fmt.Errorf("resync: %w", err)
		}
		return db, "postgres", nil
	}
	return nil, "", errors.New("resync: the database must be sqlite:PATH or postgres://…")
}

// Run runs the job and returns its report. On an error the checkpoint
// holds what was done; Run again to resume.
func (j *Job) Run(ctx context.Context) (Report, error) {
	if j.Tenant == "" || (j.Rewrap == nil && !j.DryRun) {
		return Report{}, errors.New("resync: a job needs a tenant and the server's rewrap")
	}
	if j.Batch <= 0 {
		j.Batch = 100
	}
	if j.Key == "" {
		j.Key = "id"
	}
	n, err := j.names()
	if err != nil {
		return Report{}, err
	}
	db, engine, err := open(j.DSN)
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return Report{}, fmt.Errorf("resync: the database does not answer: %w", err)
	}
	if err := j.checkSchema(ctx, db, engine); err != nil {
		return Report{}, err
	}

	rep := Report{Versions: map[string]*Count{}, Active: map[string]uint32{}, DryRun: j.DryRun}
	var after any
	if j.Checkpoint != "" && !j.DryRun {
		cp, ok, err := j.readCheckpoint()
		if err != nil {
			return Report{}, err
		}
		if ok {
			rep = cp.Report
			rep.Resumed = true
			// Learnt again: the key may have rotated since.
			rep.Active = map[string]uint32{}
			if after, err = decodeKey(cp.After, cp.Kind); err != nil {
				return Report{}, fmt.Errorf("resync: %s: its key does not decode: %w", j.Checkpoint, err)
			}
		}
	}

	total, err := j.remaining(ctx, db, n, after)
	if err != nil {
		return rep, err
	}
	if j.Progress != nil {
		j.Progress.Start(total)
	}
	var limit *rate.Limiter
	if j.Rate > 0 {
		limit = rate.NewLimiter(rate.Limit(j.Rate), j.Batch)
	}
	for {
		if limit != nil {
			if err := limit.WaitN(ctx, j.Batch); err != nil {
				return rep, fmt.Errorf("resync: %w", err)
			}
		}
		rows, last, kind, err := j.read(ctx, db, n, after)
		if err != nil {
			return rep, err
		}
		if len(rows) == 0 {
			break
		}
		if err := j.batch(ctx, db, n, rows, &rep); err != nil {
			return rep, err
		}
		after = last
		if j.Checkpoint != "" && !j.DryRun {
			if err := j.writeCheckpoint(after, kind, rep); err != nil {
				return rep, err
			}
		}
		if j.Progress != nil {
			j.Progress.Add(int64(len(rows)))
		}
		if len(rows) < j.Batch {
			break
		}
	}
	if j.DryRun {
		return rep, nil
	}
	if err := j.verify(ctx, db, n, &rep); err != nil {
		return rep, err
	}
	if j.Report != nil {
		j.report(ctx, &rep)
	}
	if j.Checkpoint != "" {
		if err := os.Remove(j.Checkpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("resync: removing the checkpoint of a finished job: %w", err)
		}
	}
	return rep, nil
}

// DatasetName is a job's dataset in its data-at-rest reports.
func (j *Job) DatasetName() string {
	if j.Dataset != "" {
		return j.Dataset
	}
	return j.Table + "(" + strings.Join(j.Columns, ",") + ")"
}

// report sends the final pass's counts to the server, one census per key
// type found. A failure is in the report, not an error of the job: the
// data moved all the same.
func (j *Job) report(ctx context.Context, rep *Report) {
	if rep.Unreadable > 0 {
		rep.ReportError = fmt.Sprintf("not reported to the server: %d values could not be read, so the census is not whole", rep.Unreadable)
		return
	}
	byType := map[string][]api.DataReportCount{}
	for name, k := range rep.Remaining {
		typ, v, _ := strings.Cut(name, "/")
		ver, _ := strconv.ParseUint(v, 10, 32)
		byType[typ] = append(byType[typ], api.DataReportCount{Version: uint32(ver), Values: uint64(k)})
	}
	types := make([]string, 0, len(byType))
	for typ := range byType {
		types = append(types, typ)
	}
	sort.Strings(types)
	for _, typ := range types {
		if _, err := j.Report.ReportDataAtRest(ctx, j.Tenant, api.DataReportRequest{Dataset: j.DatasetName(), Type: typ, Versions: byType[typ]}); err != nil {
			rep.ReportError = fmt.Sprintf("the server did not record the census of %s: %v", typ, err)
			return
		}
		rep.Reported = append(rep.Reported, typ)
	}
}

// verify reads the whole table once more, without changing it, and counts
// the values under each key version, and those it cannot read.
func (j *Job) verify(ctx context.Context, db *sql.DB, n sqlNames, rep *Report) error {
	rep.Remaining, rep.Unreadable = map[string]int64{}, 0
	var after any
	for {
		rows, last, _, err := j.read(ctx, db, n, after)
		if err != nil {
			return err
		}
		for _, r := range rows {
			for _, v := range r.values {
				if v == nil {
					continue
				}
				ct, ok := ciphertext(v)
				h, err := envelope.KeyOf(ct)
				if !ok || err != nil {
					rep.Unreadable++
					continue
				}
				rep.Remaining[h.Type+"/"+strconv.FormatUint(uint64(h.Version), 10)]++
			}
		}
		if len(rows) < j.Batch {
			return nil
		}
		after = last
	}
}

// checkSchema checks the names against the database's catalog before
// anything is read: every column exists (SQLite would take a quoted name
// it does not know for a string), and the key is the table's primary key
// or a unique, NOT NULL column, so that `key > last ORDER BY key` visits
// every row once.
func (j *Job) checkSchema(ctx context.Context, db *sql.DB, engine string) error {
	cols := map[string]bool{} // name → NOT NULL or primary key
	unique := false
	schema, table, dotted := strings.Cut(j.Table, ".")
	if !dotted {
		schema, table = "", j.Table
	}
	switch engine {
	case "sqlite":
		if schema == "" {
			schema = "main"
		}
		rs, err := db.QueryContext(ctx, `SELECT name, "notnull", pk FROM pragma_table_info($1, $2)`, table, schema)
		if err != nil {
			return fmt.Errorf("resync: reading the columns of %s: %w", j.Table, err)
		}
		pks := 0
		keyPK := false
		for rs.Next() {
			var name string
			var notNull, pk int
			if err := rs.Scan(&name, &notNull, &pk); err != nil {
				rs.Close()
				return fmt.Errorf("resync: reading the columns of %s: %w", j.Table, err)
			}
			cols[name] = notNull == 1 || pk > 0
			if pk > 0 {
				pks++
				keyPK = keyPK || name == j.Key
			}
		}
		rs.Close()
		unique = keyPK && pks == 1
		if !unique && cols[j.Key] {
			var k int
			err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_index_list($1, $2) l
				WHERE l."unique" = 1 AND l.partial = 0
				AND (SELECT COUNT(*) FROM pragma_index_info(l.name, $2)) = 1
				AND (SELECT name FROM pragma_index_info(l.name, $2)) = $3`, table, schema, j.Key).Scan(&k)
			if err != nil {
				return fmt.Errorf("resync: reading the indexes of %s: %w", j.Table, err)
			}
			unique = k > 0
		}
	case "postgres":
		n, _ := quote("table", j.Table, true)
		rs, err := db.QueryContext(ctx, `SELECT attname, attnotnull FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, n)
		if err != nil {
			return fmt.Errorf("resync: reading the columns of %s: %w", j.Table, err)
		}
		for rs.Next() {
			var name string
			var notNull bool
			if err := rs.Scan(&name, &notNull); err != nil {
				rs.Close()
				return fmt.Errorf("resync: reading the columns of %s: %w", j.Table, err)
			}
			cols[name] = notNull
		}
		rs.Close()
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = $2)`,
			n, j.Key).Scan(&unique); err != nil {
			return fmt.Errorf("resync: reading the indexes of %s: %w", j.Table, err)
		}
	}
	if len(cols) == 0 {
		return fmt.Errorf("resync: there is no table %s in the database", j.Table)
	}
	need := append([]string{j.Key}, j.Columns...)
	for _, c := range j.ContextColumns {
		need = append(need, c)
	}
	for _, c := range need {
		if _, ok := cols[c]; !ok {
			names := make([]string, 0, len(cols))
			for name := range cols {
				names = append(names, name)
			}
			sort.Strings(names)
			return fmt.Errorf("resync: %s has no column %s (its columns: %s)", j.Table, c, strings.Join(names, ", "))
		}
	}
	if !unique || !cols[j.Key] {
		return fmt.Errorf("resync: %s is not the primary key of %s, nor a unique NOT NULL column: sync walks the table in the key's order and needs each row to have its own (give --key)", j.Key, j.Table)
	}
	return nil
}

// row is one row of a batch.
type row struct {
	key    any
	values []any // per column: nil (NULL), []byte or string
	ctx    map[string]string
}

func (j *Job) remaining(ctx context.Context, db *sql.DB, n sqlNames, after any) (int64, error) {
	q := "SELECT COUNT(*) FROM " + n.table
	var args []any
	if after != nil {
		q += " WHERE " + n.key + " > $1"
		args = append(args, after)
	}
	var total int64
	if err := db.QueryRowContext(ctx, q, args...).Scan(&total); err != nil {
		return 0, fmt.Errorf("resync: counting the rows of %s: %w", j.Table, err)
	}
	return total, nil
}

// read reads the next batch after the key after (nil: from the start).
func (j *Job) read(ctx context.Context, db *sql.DB, n sqlNames, after any) ([]row, any, string, error) {
	cols := append([]string{n.key}, n.cols...)
	cols = append(cols, n.ctxCols...)
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + n.table
	args := []any{}
	if after != nil {
		q += " WHERE " + n.key + " > $1"
		args = append(args, after)
	}
	q += " ORDER BY " + n.key + " LIMIT " + strconv.Itoa(j.Batch)
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, "", fmt.Errorf("resync: reading %s: %w", j.Table, err)
	}
	defer rs.Close()
	var out []row
	var last any
	var lastKind string
	for rs.Next() {
		dst := make([]any, len(cols))
		for i := range dst {
			dst[i] = new(any)
		}
		if err := rs.Scan(dst...); err != nil {
			return nil, nil, "", fmt.Errorf("resync: reading %s: %w", j.Table, err)
		}
		r := row{key: *dst[0].(*any), ctx: map[string]string{}}
		if r.key == nil {
			return nil, nil, "", fmt.Errorf("resync: %s has a row whose %s is NULL: the key column must be the primary key", j.Table, j.Key)
		}
		for i := range n.cols {
			r.values = append(r.values, *dst[1+i].(*any))
		}
		for k, v := range j.Context {
			r.ctx[k] = v
		}
		for i, k := range n.ctxKeys {
			r.ctx[k] = text(*dst[1+len(n.cols)+i].(*any))
		}
		if last, lastKind, err = keyKind(r.key); err != nil {
			return nil, nil, "", fmt.Errorf("resync: %s: %w", j.Key, err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, "", fmt.Errorf("resync: reading %s: %w", j.Table, err)
	}
	return out, last, lastKind, nil
}

// text is a context column's value as text.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(v)
	}
}

// keyKind is a primary key as the checkpoint keeps it.
func keyKind(v any) (any, string, error) {
	switch v := v.(type) {
	case int64:
		return v, "int", nil
	case string:
		if !utf8.ValidString(v) {
			return nil, "", errors.New("a text primary key that is not UTF-8: sync cannot record where it is")
		}
		return v, "text", nil
	case []byte:
		return v, "bytes", nil
	}
	return nil, "", fmt.Errorf("a primary key of type %T: sync needs an integer, text or blob key", v)
}

func decodeKey(raw json.RawMessage, kind string) (any, error) {
	var err error
	switch kind {
	case "int":
		var v int64
		err = json.Unmarshal(raw, &v)
		return v, err
	case "text":
		var v string
		err = json.Unmarshal(raw, &v)
		return v, err
	case "bytes":
		var v []byte
		err = json.Unmarshal(raw, &v)
		return v, err
	}
	return nil, fmt.Errorf("resync: the checkpoint's key is of kind %q", kind)
}

// item is one value to rewrap.
type item struct {
	row, col int
	ct       []byte
	name     string // its key version, "data/1"
}

// batch moves the values of rows that are not under the active version,
// and writes them back.
func (j *Job) batch(ctx context.Context, db *sql.DB, n sqlNames, rows []row, rep *Report) error {
	var todo []item
	for ri, r := range rows {
		rep.Rows++
		for ci, v := range r.values {
			if v == nil {
				continue
			}
			rep.Values++
			ct, ok := ciphertext(v)
			h, err := envelope.KeyOf(ct)
			if !ok || err != nil {
				rep.Malformed++
				continue
			}
			name := h.Type + "/" + strconv.FormatUint(uint64(h.Version), 10)
			c := rep.count(name)
			c.Values++
			if active, known := rep.Active[h.Type]; known && active == h.Version {
				continue // already there: nothing to send
			}
			if j.DryRun {
				continue
			}
			todo = append(todo, item{row: ri, col: ci, ct: ct, name: name})
		}
	}
	// Rewrap, Batch values per call.
	type write struct {
		it  item
		new []byte
	}
	var writes []write
	for start := 0; start < len(todo); start += j.Batch {
		chunk := todo[start:min(start+j.Batch, len(todo))]
		req := make([]api.RewrapItem, len(chunk))
		for i, it := range chunk {
			req[i] = api.RewrapItem{Ciphertext: it.ct, Context: rows[it.row].ctx}
		}
		res, err := j.Rewrap.Rewrap(ctx, j.Tenant, req...)
		if err != nil {
			return fmt.Errorf("resync: rewrap: %w", err)
		}
		for i, r := range res {
			it := chunk[i]
			c := rep.count(it.name)
			if r.Error != nil {
				if c.Errors == nil {
					c.Errors = map[string]int64{}
				}
				c.Errors[r.Error.Code]++
				continue
			}
			if prev, known := rep.Active[r.Type]; known && prev != r.Version {
				rep.Rotated = true
			}
			rep.Active[r.Type] = r.Version
			if r.Rewrapped {
				writes = append(writes, write{it: it, new: r.Ciphertext})
			}
		}
	}
	if len(writes) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	defer tx.Rollback()
	for _, w := range writes {
		r := rows[w.it.row]
		old, repl := r.values[w.it.col], any(w.new)
		if _, isText := old.(string); isText {
			repl = base64.StdEncoding.EncodeToString(w.new)
		}
		col := n.cols[w.it.col]
		res, err := tx.ExecContext(ctx, "UPDATE "+n.table+" SET "+col+" = $1 WHERE "+n.key+" = $2 AND "+col+" = $3", repl, r.key, old)
		if err != nil {
			return fmt.Errorf("resync: writing %s: %w", j.Table, err)
		}
		k, err := res.RowsAffected()
		switch {
		case err != nil:
			return fmt.Errorf("resync: writing %s: %w", j.Table, err)
		case k > 1:
			return fmt.Errorf("resync: %d rows of %s have %s = %v: the key column must be unique (nothing of this batch was written)", k, j.Table, j.Key, r.key)
		case k == 0:
			// The application wrote the value meanwhile: its value stands.
			rep.Conflict++
			continue
		}
		rep.Moved++
		rep.count(w.it.name).Moved++
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("resync: writing %s: %w", j.Table, err)
	}
	return nil
}

// ciphertext is a value as bytes: a blob as it is, text as base64.
func ciphertext(v any) ([]byte, bool) {
	switch v := v.(type) {
	case []byte:
		return v, true
	case string:
		b, err := base64.StdEncoding.DecodeString(v)
		return b, err == nil
	}
	return nil, false
}

func (r *Report) count(name string) *Count {
	c := r.Versions[name]
	if c == nil {
		c = &Count{}
		r.Versions[name] = c
	}
	return c
}

func (j *Job) readCheckpoint() (checkpoint, bool, error) {
	b, err := os.ReadFile(j.Checkpoint)
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("resync: the checkpoint: %w", err)
	}
	var cp checkpoint
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil || cp.Format != 1 || cp.Report.Versions == nil || cp.Report.Active == nil {
		return checkpoint{}, false, fmt.Errorf("resync: %s is not a sync checkpoint: remove it to start from the beginning", j.Checkpoint)
	}
	if cp.Job != j.fingerprint() {
		return checkpoint{}, false, fmt.Errorf("resync: %s is the checkpoint of another sync (another tenant, database, table, columns or context): finish that one, or remove the file", j.Checkpoint)
	}
	return cp, true, nil
}

func (j *Job) writeCheckpoint(after any, kind string, rep Report) error {
	a, err := json.Marshal(after)
	if err != nil {
		return fmt.Errorf("resync: the checkpoint: %w", err)
	}
	b, err := json.MarshalIndent(checkpoint{Format: 1, Job: j.fingerprint(), After: a, Kind: kind, Report: rep}, "", "  ")
	if err != nil {
		return fmt.Errorf("resync: the checkpoint: %w", err)
	}
	return atomicfile.Write(j.Checkpoint, append(b, '\n'))
}

// Lines is the report as the CLI prints it: one line per key version,
// oldest first, saying what is left and whether the table still needs it.
// "Safe to destroy" rests on the final read-only pass (Remaining) alone:
// no value of the columns under the version, and none unreadable.
func (r Report) Lines(table string, columns []string) []string {
	counts := map[string]*Count{}
	for name, c := range r.Versions {
		counts[name] = c
	}
	for name := range r.Remaining {
		if counts[name] == nil {
			counts[name] = &Count{}
		}
	}
	for typ, v := range r.Active {
		if name := typ + "/" + strconv.FormatUint(uint64(v), 10); counts[name] == nil {
			counts[name] = &Count{}
		}
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Slice(names, func(a, b int) bool {
		ta, va, _ := strings.Cut(names[a], "/")
		tb, vb, _ := strings.Cut(names[b], "/")
		if ta != tb {
			return ta < tb
		}
		na, _ := strconv.Atoi(va)
		nb, _ := strconv.Atoi(vb)
		return na < nb
	})
	var out []string
	where := table + "(" + strings.Join(columns, ", ") + ")"
	safe := false
	for _, name := range names {
		c := counts[name]
		typ, v, _ := strings.Cut(name, "/")
		ver, _ := strconv.ParseUint(v, 10, 32)
		active, known := r.Active[typ]
		left := r.Remaining[name]
		switch {
		case r.DryRun:
			out = append(out, fmt.Sprintf("%s: %d values (dry run: nothing moved)", name, c.Values))
		case known && uint32(ver) == active:
			line := fmt.Sprintf("%s: active: %d values under it (%d moved to it)", name, left, movedTo(r, typ))
			if k := sum(c.Errors); k > 0 {
				line += fmt.Sprintf("; %d refused (%s)", k, codes(c.Errors))
			}
			out = append(out, line)
		case left == 0 && r.Unreadable > 0:
			out = append(out, fmt.Sprintf("%s: 0 readable values left in %s, but %d values could not be read: not verified (%d moved)", name, where, r.Unreadable, c.Moved))
		case left == 0:
			safe = true
			out = append(out, fmt.Sprintf("%s: 0 values left in %s: safe to destroy for this table (%d moved)", name, where, c.Moved))
		case c.Errors[api.CodeKeyDestroyed] == left:
			out = append(out, fmt.Sprintf("%s: destroyed: %d values in %s can never be decrypted again", name, left, where))
		default:
			why := codes(c.Errors)
			if why == "" {
				why = "not moved: changed by the application, written during the run, or passed while the key rotated; run sync again"
			}
			out = append(out, fmt.Sprintf("%s: %d values left in %s (%s): not safe to destroy (%d moved)", name, left, where, why, c.Moved))
		}
	}
	if r.Rotated {
		out = append(out, "the active key changed during the run: run sync again to move what it had passed")
	}
	if safe {
		out = append(out, "\"safe to destroy\" covers "+where+" as it was at the end of this run: other tables, files, and clients still holding the version's DEK are not checked")
	}
	return out
}

// codes is a count of API codes as "2 decryption_failed, 1 key_destroyed".
func codes(m map[string]int64) string {
	why := make([]string, 0, len(m))
	for code, k := range m {
		why = append(why, fmt.Sprintf("%d %s", k, code))
	}
	sort.Strings(why)
	return strings.Join(why, ", ")
}

func movedTo(r Report, typ string) int64 {
	var n int64
	for name, c := range r.Versions {
		if strings.HasPrefix(name, typ+"/") {
			n += c.Moved
		}
	}
	return n
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
