package strangler

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// cutoverRecord finds when route was last cut over and the candidate's
// counters then (from the gate snapshot stored with that transition). A
// route put in cutover by its config, without a transition, counts from
// when the store first recorded it, with its whole record.
func (s *Store) cutoverRecord(ctx context.Context, route string) (time.Time, *SideTotals, error) {
	var at string
	var ev sql.NullString
	err := s.db.QueryRowContext(ctx, s.q(`SELECT at, evidence FROM transitions WHERE route = ? AND to_mode = ?
		ORDER BY id DESC LIMIT 1`), route, string(ModeCutover)).Scan(&at, &ev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var updated string
		err := s.db.QueryRowContext(ctx, s.q(`SELECT updated FROM routes WHERE route = ? AND mode = ?`),
			route, string(ModeCutover)).Scan(&updated)
		if errors.Is(err, sql.ErrNoRows) {
			return time.Time{}, nil, nil
		}
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("read cutover time of %q: %w", route, err)
		}
		t, _ := time.Parse(time.RFC3339Nano, updated)
		return t, nil, nil
	case err != nil:
		return time.Time{}, nil, fmt.Errorf("read cutover record of %q: %w", route, err)
	}
	t, _ := time.Parse(time.RFC3339Nano, at)
	if !ev.Valid {
		return t, nil, nil
	}
	var snap GateSnapshot
	if json.Unmarshal([]byte(ev.String), &snap) != nil || snap.To != ModeCutover {
		return t, nil, nil
	}
	c := snap.Candidate
	return t, &c, nil
}
