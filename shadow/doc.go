// Package shadow mirrors live requests to a candidate backend, compares the
// candidate's responses with the legacy ones, learns which differences are
// noise, and aggregates the evidence a cutover gate decides on.
//
// The client never waits for the candidate: a copy of each request is
// queued, detached, to a bounded per-route worker pool with its own
// deadline, rate cap and circuit breaker (Mirror). Comparison (Compare) is
// structural for JSON, with typed differences at JSON-pointer paths,
// line-based for text and by hash for anything else, always after undoing
// Content-Encoding. Noise is learned from legacy-vs-legacy (A/A) samples
// (Noise) and turned into ignore rules a user can paste into
// strangler.yaml. Evidence aggregates per route in O(1) per sample.
//
// # Why it is shaped this way
//
// The tools people use for this job taught us what to keep and what to fix:
//
//   - Twitter's Diffy compares primary against candidate and primary against
//     secondary to tell real differences from noise. That A/A idea is kept,
//     but Diffy needs a second legacy deployment running all the time, and
//     its users reported running out of memory on responses that differ only
//     in a random UUID (twitter-archive/diffy#59). Here the A/A request goes
//     to the same legacy only until a route's noise mask is stable (then one
//     request in 200), evidence is aggregated, not stored per response, and
//     the store bounds samples per signature. opendiffy/diffy#93: gzip
//     responses were compared as raw bytes (two gzip streams differ by their
//     mtime alone); bodies are decoded first here (gzip, br, deflate).
//   - Diferencia's noise detection covers bodies only, so a Date header made
//     every comparison fail; headers are compared case-insensitively, Date,
//     Server and hop-by-hop headers are ignored by default, and header
//     differences are learned as noise like body fields.
//   - Keploy users hand-list noisy fields (timestamps, UUIDs) per test and
//     fight array order; here noisy paths are learned, UUID and timestamp
//     values are classified (a shape is a hint, never an automatic pass),
//     and arrays can be compared as multisets, optionally matched by a key
//     field, with a single "order" difference when only the order changed.
//   - GitHub Scientist is explicit that experiments must not have side
//     effects, yet shadowing tools silently skip writes. Writes are denied by
//     default and every skipped write is counted in the evidence, so a
//     report can say how much traffic was never verified.
//   - Latency belongs in the same evidence as correctness (Scientist times
//     both behaviours; the HTTP diffing proxies report differences only):
//     both sides are recorded in log-scale histograms, and gates read
//     p50/p95/p99 and their ratio.
package shadow
