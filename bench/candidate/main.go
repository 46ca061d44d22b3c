// Command candidate is the loopback stand-in for a Wasm candidate in
// bench/shadow-overhead.sh: it answers every request with the same JSON
// document as bench/backend, optionally after a delay (a slow candidate) or
// never (a hanging one, which holds each request until the caller gives up),
// so the benchmark can show what mirroring to each costs the client.
package main

import (
	"bytes"
	"flag"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18091", "listen address")
	delay := flag.Duration("delay", 0, "wait this long before answering each request (e.g. 800us)")
	hang := flag.Bool("hang", false, "never answer: hold each request until the caller disconnects")
	pad := flag.Int("pad", 0, "append an extra document of this many bytes, so every answer differs from legacy and is large (memory tests)")
	flag.Parse()

	// The same document bench/backend sends, so a healthy candidate matches
	// legacy and the comparison does its full work on every copy.
	body := []byte(`[{"id":"1","name":"Car Engine","description":"V8","price":8500,"skuCode":"ENG-V8-500"},` +
		`{"id":"2","name":"Brake Pads","description":"High performance","price":150,"skuCode":"BRK-PD-HP"}]`)
	if *pad > 0 {
		// A second array element legacy does not have: each copy mismatches,
		// so each one is a sample the store is asked to keep.
		extra := append([]byte(`,{"id":"pad","description":"`), bytes.Repeat([]byte{'x'}, *pad)...)
		body = append(append(body[:len(body)-1:len(body)-1], extra...), []byte(`"}]`)...)
	}
	length := strconv.Itoa(len(body))

	// Requests seen, served and abandoned are printed on /candidate-stats so
	// the script can tell how many copies actually reached the candidate.
	var seen, served, abandoned atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/candidate-stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"seen":` + strconv.FormatInt(seen.Load(), 10) +
			`,"served":` + strconv.FormatInt(served.Load(), 10) +
			`,"abandoned":` + strconv.FormatInt(abandoned.Load(), 10) + "}\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if *hang {
			<-r.Context().Done()
			abandoned.Add(1)
			return
		}
		if *delay > 0 {
			t := time.NewTimer(*delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				abandoned.Add(1)
				return
			}
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		w.Write(body)
		served.Add(1)
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
