package shadow_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// Compare a legacy Spring Boot answer with a candidate's: the error body's
// timestamp is ignored out of the box, the renamed field and the changed
// price literal are typed differences at JSON pointers.
func ExampleCompare() {
	h := http.Header{"Content-Type": {"application/json"}}
	legacy := shadow.Response{Status: 200, Header: h, Body: []byte(`{"skuCode":"BRK-PD-HP","price":150.00,"inStock":true}`)}
	cand := shadow.Response{Status: 200, Header: h, Body: []byte(`{"sku":"BRK-PD-HP","price":150,"inStock":true}`)}
	res := shadow.Compare(legacy, cand, nil, nil)
	fmt.Println(res.Outcome)
	for _, d := range res.Differences {
		fmt.Println(strings.TrimSpace(d.Type + " " + d.Path + " " + d.Shape))
	}
	// With numeric tolerance 150.00 equals 150.
	res = shadow.Compare(legacy, cand, &shadow.Options{Numeric: true}, nil)
	fmt.Println(res.Signatures())
	// Output:
	// mismatch
	// missing /skuCode
	// value /price numeric-equal
	// extra /sku
	// [/sku extra /skuCode missing]
}

// Learn noise from two legacy answers to the same request (A/A), then
// compare a candidate: the order number differs everywhere and is noise.
func ExampleNoise() {
	h := http.Header{"Content-Type": {"application/json"}}
	resp := func(body string) shadow.Response { return shadow.Response{Status: 200, Header: h, Body: []byte(body)} }
	a1 := resp(`[{"orderNumber":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","total":30}]`)
	a2 := resp(`[{"orderNumber":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","total":30}]`)
	noise := shadow.NewNoise()
	noise.Learn(shadow.Compare(a1, a2, nil, nil), time.Now())
	for _, s := range noise.Suggestions() {
		fmt.Println(s.Key, s.Value, s.Shape)
	}
	cand := resp(`[{"orderNumber":"0a0a0a0a-4f89-11d3-9a0c-0305e82c3301","total":30}]`)
	fmt.Println(shadow.Compare(a1, cand, nil, noise).Outcome)
	// Output:
	// ignore /*/orderNumber uuid
	// match
}

// Render prints a stored sample as a unified diff.
func ExampleRender() {
	h := http.Header{"Content-Type": {"text/plain"}}
	s := shadow.Sample{Route: "POST /api/order",
		Legacy:    shadow.Response{Status: 201, Header: h, Body: []byte("Product is not in stock, please try again later")},
		Candidate: shadow.Response{Status: 500, Header: h, Body: []byte("internal error")}}
	s.Result = shadow.Compare(s.Legacy, s.Candidate, nil, nil)
	shadow.Render(s, os.Stdout, false)
	// Output:
	// POST /api/order
	// 0001-01-01T00:00:00Z  legacy vs candidate  mismatch (2 differences, 0 noise)
	//   status differs                           201 → 500
	//   text line 1 differs                      Product is not in stock, please try again later → internal error
	// --- legacy
	// +++ candidate
	// @@ status @@
	// -201
	// +500
	// @@ -1,1 +1,1 @@ body
	// -Product is not in stock, please try again later
	// +internal error
}
