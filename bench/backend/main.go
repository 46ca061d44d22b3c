// Command backend is the loopback upstream for bench/proxy-vs-nginx.sh: it
// answers every request with the same small JSON document, as fast as Go's
// net/http can, so the benchmark measures the proxy in front of it.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()
	body := []byte(`[{"id":"1","name":"Car Engine","description":"V8","price":8500,"skuCode":"ENG-V8-500"},` +
		`{"id":"2","name":"Brake Pads","description":"High performance","price":150,"skuCode":"BRK-PD-HP"}]`)
	length := strconv.Itoa(len(body))
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		w.Write(body)
	})))
}
