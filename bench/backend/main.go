// Command backend is the loopback upstream for bench/proxy-vs-nginx.sh and
// bench/shadow-overhead.sh: it answers every request with the same small
// JSON document, as fast as Go's net/http can, so the benchmark measures
// the proxy in front of it — or, with -delay, after waiting as a service
// does for its database.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	delay := flag.Duration("delay", 0, "wait this long before answering each request (e.g. 1ms, a database round trip)")
	flag.Parse()
	body := []byte(`[{"id":"1","name":"Car Engine","description":"V8","price":8500,"skuCode":"ENG-V8-500"},` +
		`{"id":"2","name":"Brake Pads","description":"High performance","price":150,"skuCode":"BRK-PD-HP"}]`)
	length := strconv.Itoa(len(body))
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *delay > 0 {
			time.Sleep(*delay)
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		w.Write(body)
	})))
}
