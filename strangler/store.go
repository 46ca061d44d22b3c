package strangler

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Store is migrate's durable state: route modes, the transition audit log,
// per-route counters, shadow evidence and samples. It is one SQLite file
// (WAL) by default, or a PostgreSQL database shared by several proxy
// replicas (store_postgres.go). Transitions are committed (synchronous=FULL
// on SQLite) before they are acknowledged, so a crash never loses an
// acknowledged transition; counters are flushed periodically and on
// shutdown.
type Store struct {
	db     *sql.DB
	path   string
	writer *sampleWriter
	// postgres is set for a PostgreSQL store: its queries take $n
	// placeholders, and mode changes are announced to other replicas.
	postgres *pgStore
	// replica names this process among those sharing the store: its
	// counters and evidence are its own rows. "" on SQLite, which one
	// process owns.
	replica string
}

// q adapts a query written with ? placeholders to the store's database.
func (s *Store) q(query string) string {
	if s.postgres == nil {
		return query
	}
	return numberPlaceholders(query)
}

// numberPlaceholders turns ? into $1, $2, … outside quoted text.
func numberPlaceholders(query string) string {
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range query {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

const schema = `
CREATE TABLE IF NOT EXISTS routes (
	route   TEXT PRIMARY KEY,
	service TEXT NOT NULL,
	mode    TEXT NOT NULL,
	weight  INTEGER NOT NULL,
	updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          TEXT NOT NULL,
	route       TEXT NOT NULL,
	service     TEXT NOT NULL,
	from_mode   TEXT NOT NULL,
	to_mode     TEXT NOT NULL,
	from_weight INTEGER NOT NULL,
	to_weight   INTEGER NOT NULL,
	actor       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	forced      INTEGER NOT NULL,
	evidence    TEXT
);
CREATE INDEX IF NOT EXISTS transitions_route ON transitions(route, id);
CREATE TABLE IF NOT EXISTS counters (
	route   TEXT NOT NULL,
	kind    TEXT NOT NULL,
	data    TEXT NOT NULL,
	updated TEXT NOT NULL,
	replica TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (route, kind)
);
CREATE TABLE IF NOT EXISTS evidence (
	route   TEXT PRIMARY KEY,
	service TEXT NOT NULL,
	data    TEXT NOT NULL,
	updated TEXT NOT NULL,
	replica TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS samples (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	at        TEXT NOT NULL,
	route     TEXT NOT NULL,
	signature TEXT NOT NULL,
	data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_route ON samples(route, signature, id);
`

// replicaIndexes key counters and evidence by the replica that wrote them.
// They come after replicaColumns, which gives files written before replicas
// existed the column.
const replicaIndexes = `
CREATE UNIQUE INDEX IF NOT EXISTS counters_replica ON counters(replica, route, kind);
CREATE UNIQUE INDEX IF NOT EXISTS evidence_replica ON evidence(replica, route);
`

// addReplicaColumns upgrades a state file from before replicas: one
// process wrote it, as replica "".
func addReplicaColumns(db *sql.DB) error {
	for _, table := range []string{"counters", "evidence"} {
		if _, err := db.Exec(`SELECT replica FROM ` + table + ` LIMIT 0`); err == nil {
			continue
		}
		if _, err := db.Exec(`ALTER TABLE ` + table + ` ADD COLUMN replica TEXT NOT NULL DEFAULT ''`); err != nil {
			return err
		}
	}
	return nil
}

// OpenStore opens (creating if needed) the state store at location: a
// postgres:// or postgresql:// URL, or the path of a SQLite file.
func OpenStore(location string) (*Store, error) {
	if IsPostgresURL(location) {
		return openPostgresStore(location)
	}
	return openSQLiteStore(location)
}

func openSQLiteStore(path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(5000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a single connection also keeps
	// the pragmas in force for every statement.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema + canarySchema); err == nil {
		if err = addReplicaColumns(db); err == nil {
			_, err = db.Exec(replicaIndexes)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state store %s: %w (is it a migrate state file, and is the directory writable?)", path, err)
	}
	s := &Store{db: db, path: path}
	s.startWriter()
	return s, nil
}

// Path is the state file, or the PostgreSQL URL with its password removed.
func (s *Store) Path() string { return s.path }

// Close stores the samples still queued and closes the database.
func (s *Store) Close() error {
	s.stopWriter()
	if s.postgres != nil {
		s.postgres.close()
	}
	return s.db.Close()
}

// DB exposes the database for read-only queries by reports.
func (s *Store) DB() *sql.DB { return s.db }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// boolInt stores a flag as the INTEGER both databases read back.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// LoadRoutes reads every route's stored mode and weight.
func (s *Store) LoadRoutes(ctx context.Context) (map[string]RouteState, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT route, mode, weight FROM routes`))
	if err != nil {
		return nil, fmt.Errorf("load route states: %w", err)
	}
	defer rows.Close()
	out := map[string]RouteState{}
	for rows.Next() {
		var name string
		var st RouteState
		if err := rows.Scan(&name, &st.Mode, &st.Weight); err != nil {
			return nil, fmt.Errorf("load route states: %w", err)
		}
		out[name] = st
	}
	return out, rows.Err()
}

// SeedRoute records a route's initial state unless the store knows it.
func (s *Store) SeedRoute(ctx context.Context, route, service string, st RouteState, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO routes(route, service, mode, weight, updated)
		VALUES(?,?,?,?,?) ON CONFLICT(route) DO UPDATE SET service=excluded.service`),
		route, service, string(st.Mode), st.Weight, stamp(at))
	if err != nil {
		return fmt.Errorf("seed route %q: %w", route, err)
	}
	return nil
}

// Transition is one audited change of a route's mode or weight.
type Transition struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Route      string    `json:"route"`
	Service    string    `json:"service"`
	From       Mode      `json:"from"`
	To         Mode      `json:"to"`
	FromWeight int       `json:"fromWeight"`
	ToWeight   int       `json:"toWeight"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
	// Forced is true when a gate said no and the actor overrode it.
	Forced bool `json:"forced"`
	// Evidence is the snapshot the decision was made on (gate criteria,
	// shadow evidence, counters), as JSON.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// CommitTransitions writes route states and their audit records in one
// durable transaction; IDs are filled in on success.
func (s *Store) CommitTransitions(ctx context.Context, ts []Transition) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record transition: %w", err)
	}
	defer tx.Rollback()
	if err := s.lockTransitions(ctx, tx); err != nil {
		return fmt.Errorf("record transition: %w", err)
	}
	for i := range ts {
		t := &ts[i]
		// Another replica may have moved the route since this one last
		// read it: decide on what is stored, never twice.
		var mode string
		var weight int
		err := tx.QueryRowContext(ctx, s.q(`SELECT mode, weight FROM routes WHERE route = ?`), t.Route).Scan(&mode, &weight)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("record transition of %q: %w", t.Route, err)
		}
		if err == nil && (Mode(mode) != t.From || weight != t.FromWeight) {
			return &ConflictError{Msg: fmt.Sprintf("route %q was moved to %s meanwhile (by another replica or command); check `migrate status` and retry",
				t.Route, stateText(RouteState{Mode: Mode(mode), Weight: weight}))}
		}
		var ev any
		if len(t.Evidence) > 0 {
			ev = string(t.Evidence)
		}
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO transitions(at, route, service, from_mode, to_mode,
			from_weight, to_weight, actor, reason, forced, evidence) VALUES(?,?,?,?,?,?,?,?,?,?,?) RETURNING id`),
			stamp(t.At), t.Route, t.Service, string(t.From), string(t.To), t.FromWeight, t.ToWeight,
			t.Actor, t.Reason, boolInt(t.Forced), ev).Scan(&t.ID); err != nil {
			return fmt.Errorf("record transition of %q: %w", t.Route, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO routes(route, service, mode, weight, updated)
			VALUES(?,?,?,?,?) ON CONFLICT(route) DO UPDATE SET service=excluded.service,
			mode=excluded.mode, weight=excluded.weight, updated=excluded.updated`),
			t.Route, t.Service, string(t.To), t.ToWeight, stamp(t.At)); err != nil {
			return fmt.Errorf("record transition of %q: %w", t.Route, err)
		}
	}
	if err := s.announceTransitions(ctx, tx); err != nil {
		return fmt.Errorf("record transition: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record transition: %w", err)
	}
	return nil
}

// AuditQuery filters the audit log. Zero fields do not filter.
type AuditQuery struct {
	Route   string
	Service string
	// Limit keeps the newest Limit records (default 100).
	Limit int
}

// Audit reads transitions, oldest first.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]Transition, error) {
	var where []string
	var args []any
	if q.Route != "" {
		where, args = append(where, "route = ?"), append(args, q.Route)
	}
	if q.Service != "" {
		where, args = append(where, "service = ?"), append(args, q.Service)
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	query := `SELECT id, at, route, service, from_mode, to_mode, from_weight, to_weight, actor, reason,
		forced, evidence FROM transitions`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var at string
		var ev sql.NullString
		var forced int
		if err := rows.Scan(&t.ID, &at, &t.Route, &t.Service, &t.From, &t.To, &t.FromWeight,
			&t.ToWeight, &t.Actor, &t.Reason, &forced, &ev); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		t.Forced = forced != 0
		t.At, _ = time.Parse(time.RFC3339Nano, at)
		if ev.Valid {
			t.Evidence = json.RawMessage(ev.String)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// CounterRow is one persisted counter document: kind is "legacy",
// "candidate" (a SideSnapshot), "mirror", "noise" or "shadow", keyed by
// route, or CounterKindUsage (a CandidateUsage), keyed by service.
type CounterRow struct {
	Route string
	Kind  string
	Data  json.RawMessage
}

// SaveCounters upserts counter documents in one transaction.
func (s *Store) SaveCounters(ctx context.Context, rows []CounterRow, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save counters: %w", err)
	}
	defer tx.Rollback()
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO counters(replica, route, kind, data, updated) VALUES(?,?,?,?,?)
			ON CONFLICT(replica, route, kind) DO UPDATE SET data=excluded.data, updated=excluded.updated`),
			s.replica, r.Route, r.Kind, string(r.Data), stamp(at)); err != nil {
			return fmt.Errorf("save counters of %q: %w", r.Route, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save counters: %w", err)
	}
	return nil
}

// LoadCounters reads every counter document, by route and kind, summed
// over the replicas that share the store (fleet totals, for reports).
func (s *Store) LoadCounters(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	return s.counters(ctx, "")
}

// ownCounters reads what this replica stored, to resume from.
func (s *Store) ownCounters(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	return s.counters(ctx, "replica = ?", s.replica)
}

// peerCounters reads what the other replicas stored.
func (s *Store) peerCounters(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	return s.counters(ctx, "replica <> ?", s.replica)
}

func (s *Store) counters(ctx context.Context, where string, args ...any) (map[string]map[string]json.RawMessage, error) {
	query := `SELECT route, kind, data FROM counters`
	if where != "" {
		query += " WHERE " + where
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY updated"), args...)
	if err != nil {
		return nil, fmt.Errorf("load counters: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]json.RawMessage{}
	for rows.Next() {
		var route, kind, data string
		if err := rows.Scan(&route, &kind, &data); err != nil {
			return nil, fmt.Errorf("load counters: %w", err)
		}
		if out[route] == nil {
			out[route] = map[string]json.RawMessage{}
		}
		out[route][kind] = sumCounters(kind, out[route][kind], json.RawMessage(data))
	}
	return out, rows.Err()
}

// sumCounters adds a replica's counter document to the sum so far. Counts
// add; learned noise, which each replica learns whole, is the newest.
func sumCounters(kind string, sum, doc json.RawMessage) json.RawMessage {
	if sum == nil {
		return doc
	}
	var out any
	switch Side(kind) {
	case SideLegacy, SideCandidate:
		var a, b SideSnapshot
		if json.Unmarshal(sum, &a) != nil || json.Unmarshal(doc, &b) != nil {
			return doc
		}
		out = a.add(b)
	}
	switch kind {
	case "mirror":
		var a, b MirrorStatus
		if json.Unmarshal(sum, &a) != nil || json.Unmarshal(doc, &b) != nil {
			return doc
		}
		out = a.add(b)
	case CounterKindUsage:
		var a, b CandidateUsage
		if json.Unmarshal(sum, &a) != nil || json.Unmarshal(doc, &b) != nil {
			return doc
		}
		out = a.Add(b)
	}
	if out == nil {
		return doc
	}
	data, err := json.Marshal(out)
	if err != nil {
		return doc
	}
	return data
}

// SaveEvidence stores a route's shadow evidence document (shadow.Evidence JSON).
func (s *Store) SaveEvidence(ctx context.Context, route, service string, data json.RawMessage, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO evidence(replica, route, service, data, updated) VALUES(?,?,?,?,?)
		ON CONFLICT(replica, route) DO UPDATE SET service=excluded.service, data=excluded.data, updated=excluded.updated`),
		s.replica, route, service, string(data), stamp(at))
	if err != nil {
		return fmt.Errorf("save evidence of %q: %w", route, err)
	}
	return nil
}

// LoadEvidence reads every route's evidence document, merged over the
// replicas that share the store (fleet totals, for reports).
func (s *Store) LoadEvidence(ctx context.Context) (map[string]json.RawMessage, error) {
	return s.evidence(ctx, "")
}

// ownEvidence reads what this replica stored, to resume from.
func (s *Store) ownEvidence(ctx context.Context) (map[string]json.RawMessage, error) {
	return s.evidence(ctx, "replica = ?", s.replica)
}

// peerEvidence reads the other replicas' evidence, merged per route.
func (s *Store) peerEvidence(ctx context.Context) (map[string]json.RawMessage, error) {
	return s.evidence(ctx, "replica <> ?", s.replica)
}

func (s *Store) evidence(ctx context.Context, where string, args ...any) (map[string]json.RawMessage, error) {
	query := `SELECT route, data FROM evidence`
	if where != "" {
		query += " WHERE " + where
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("load evidence: %w", err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	merged := map[string]*shadow.Evidence{}
	for rows.Next() {
		var route, data string
		if err := rows.Scan(&route, &data); err != nil {
			return nil, fmt.Errorf("load evidence: %w", err)
		}
		prev, seen := out[route]
		out[route] = json.RawMessage(data)
		if !seen {
			continue
		}
		// A second replica's document: merge the two.
		if merged[route] == nil {
			merged[route] = new(shadow.Evidence)
			if err := json.Unmarshal(prev, merged[route]); err != nil {
				return nil, fmt.Errorf("load evidence of %q: %w", route, err)
			}
		}
		var ev shadow.Evidence
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, fmt.Errorf("load evidence of %q: %w", route, err)
		}
		merged[route].Merge(&ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load evidence: %w", err)
	}
	for route, ev := range merged {
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("load evidence of %q: %w", route, err)
		}
		out[route] = data
	}
	return out, nil
}

// SampleRow is one stored shadow sample (shadow.Sample JSON, redacted).
type SampleRow struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Route     string          `json:"route"`
	Signature string          `json:"signature"`
	Data      json.RawMessage `json:"data"`
}

// AddSamples stores samples, keeping at most keep per (route, signature):
// the oldest beyond that are deleted, so storage stays bounded however
// long shadowing runs.
func (s *Store) AddSamples(ctx context.Context, samples []SampleRow, keep int) error {
	if len(samples) == 0 {
		return nil
	}
	if keep <= 0 {
		return errors.New("add samples: keep must be positive")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add samples: %w", err)
	}
	defer tx.Rollback()
	type key struct{ route, sig string }
	touched := map[key]bool{}
	for _, r := range samples {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO samples(at, route, signature, data) VALUES(?,?,?,?)`),
			stamp(r.At), r.Route, r.Signature, string(r.Data)); err != nil {
			return fmt.Errorf("add sample of %q: %w", r.Route, err)
		}
		touched[key{r.Route, r.Signature}] = true
	}
	for k := range touched {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM samples WHERE route = ? AND signature = ? AND id NOT IN
			(SELECT id FROM samples WHERE route = ? AND signature = ? ORDER BY id DESC LIMIT ?)`),
			k.route, k.sig, k.route, k.sig, keep); err != nil {
			return fmt.Errorf("trim samples of %q: %w", k.route, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add samples: %w", err)
	}
	return nil
}

// Samples reads a route's stored samples ("" = all routes), newest first.
// With differences it reads only those worth a look: not A/A baselines,
// and not matches. Matching samples are stored all along, so without the
// filter the newest rows of a busy route may hold no difference at all.
func (s *Store) Samples(ctx context.Context, route string, limit int, differences bool) ([]SampleRow, error) {
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT id, at, route, signature, data FROM samples WHERE 1=1`
	var args []any
	if route != "" {
		query += ` AND route = ?`
		args = append(args, route)
	}
	if differences {
		// The signatures SampleSignature gives matches and baselines.
		query += ` AND signature <> ? AND signature NOT LIKE ?`
		args = append(args, shadow.OutcomeMatch, baselineSignature+"%")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read samples: %w", err)
	}
	defer rows.Close()
	var out []SampleRow
	for rows.Next() {
		var r SampleRow
		var at, data string
		if err := rows.Scan(&r.ID, &at, &r.Route, &r.Signature, &data); err != nil {
			return nil, fmt.Errorf("read samples: %w", err)
		}
		r.At, _ = time.Parse(time.RFC3339Nano, at)
		r.Data = json.RawMessage(data)
		out = append(out, r)
	}
	return out, rows.Err()
}
