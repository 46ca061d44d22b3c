package strangler

import (
	"context"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// TestRouteStatusDescribesDifferences: the differences a route's status
// lists carry their signature for tools and the same class in plain words
// for people.
func TestRouteStatusDescribesDifferences(t *testing.T) {
	engine := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	t.Cleanup(func() { engine.Close(context.Background()) })
	ev := &shadow.Evidence{}
	ev.Add(shadow.Sample{At: time.Now(), Result: shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{
		{Path: "/id", Type: "value", Signature: "/id value"}}}})
	engine.Restore("GET /api/order", "orders", ev, nil)
	diffs, _, _ := evidenceDetail(engine, "GET /api/order")
	if len(diffs) != 1 || diffs[0].Signature != "/id value" || diffs[0].Text != "value differs at /id" || diffs[0].Count != 1 {
		t.Errorf("differences = %+v, want /id value said as \"value differs at /id\"", diffs)
	}
}
