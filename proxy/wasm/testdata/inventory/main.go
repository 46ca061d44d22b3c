// Command inventory is a complete WAGI guest: the inventory lookup of the
// fixture shop (GET /api/inventory?skuCode=A&skuCode=B) written against the
// CGI contract of package wasm. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -o inventory.wasm .
//
// and the same file runs in migrate's proxy, under Spin's wagi executor and
// with `wasmtime run --env REQUEST_METHOD=GET --env QUERY_STRING=skuCode=ENG-V8-500 inventory.wasm`.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
)

// stock is the seed data; a real component would query its store.
var stock = map[string]int{"ENG-V8-500": 10, "BRK-PD-HP": 10, "FL-PMP-ELEC": 0}

type inventoryResponse struct {
	SkuCode string `json:"skuCode"`
	InStock bool   `json:"inStock"`
}

func main() {
	// Everything goes through one buffered writer: the header block, the
	// blank line, then the body. Flush before main returns.
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()

	if os.Getenv("REQUEST_METHOD") != "GET" {
		fmt.Fprint(w, "Status: 405\nAllow: GET\nContent-Type: text/plain\n\nmethod not allowed\n")
		return
	}
	query, err := url.ParseQuery(os.Getenv("QUERY_STRING"))
	if err != nil {
		fmt.Fprintf(w, "Status: 400\nContent-Type: text/plain\n\n%v\n", err)
		return
	}
	// Diagnostics go to stderr, which migrate puts in its log.
	fmt.Fprintf(os.Stderr, "inventory lookup for %d SKUs\n", len(query["skuCode"]))

	out := []inventoryResponse{}
	seen := map[string]bool{}
	for _, sku := range query["skuCode"] {
		n, known := stock[sku]
		if !known || seen[sku] {
			continue // unknown SKUs are omitted, duplicates collapsed
		}
		seen[sku] = true
		out = append(out, inventoryResponse{SkuCode: sku, InStock: n > 0})
	}
	fmt.Fprint(w, "Content-Type: application/json\n\n")
	json.NewEncoder(w).Encode(out)
}
