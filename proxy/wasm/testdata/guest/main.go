// Command guest is the WAGI test module of package wasm. It is built with
// GOOS=wasip1 GOARCH=wasm by the package tests; PATH_INFO selects a behaviour
// so one compiled module covers the whole contract, including the ways a
// guest can fail.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// counter is global state: with a fresh instance per request it is always
// 1 when printed, whatever happened in earlier requests.
var counter int

// keep holds allocations so the compiler cannot drop them.
var keep [][]byte

type lineItem struct {
	SKU      string  `json:"skuCode"`
	Price    float64 `json:"price"`
	Quantity int     `json:"quantity"`
}

type order struct {
	Items []lineItem `json:"orderLineItemsDtoList"`
}

func main() {
	counter++
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch os.Getenv("PATH_INFO") {
	case "/order":
		placeOrder(out)
	case "/env":
		env := os.Environ()
		sort.Strings(env)
		writeJSON(out, 200, env)
	case "/echo":
		body, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintf(out, "Status: 500\n\n%v", err)
			return
		}
		fmt.Fprintf(out, "Content-Type: %s\nX-Echo-Length: %d\n\n", os.Getenv("CONTENT_TYPE"), len(body))
		out.Write(body)
	case "/counter":
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%d", counter)
	case "/redirect":
		fmt.Fprint(out, "Location: /elsewhere\n\n")
	case "/status":
		fmt.Fprint(out, "Status: 418 I'm a teapot\r\nContent-Type: text/plain\r\nX-Multi: a\r\nX-Multi: b\r\n\r\nshort and stout")
	case "/nobody":
		fmt.Fprint(out, "Status: 204\n\n")
	case "/time":
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%d %d", time.Now().UnixNano(), n)
	case "/fs":
		_, err := os.ReadFile("/etc/hostname")
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%v", err != nil)
	case "/stderr":
		fmt.Fprintln(os.Stderr, strings.Repeat("x", 100000))
		fmt.Fprint(out, "Content-Type: text/plain\n\nok")
	case "/exit":
		out.Flush()
		os.Exit(3)
	case "/panic":
		panic("guest panic")
	case "/hang":
		for {
			counter++
		}
	case "/oom":
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	case "/badheader":
		fmt.Fprint(out, "this is not a header block")
	case "/big":
		n, _ := strconv.Atoi(os.Getenv("QUERY_STRING"))
		fmt.Fprint(out, "Content-Type: text/plain\n\n")
		chunk := strings.Repeat("y", 1024)
		for i := 0; i < n; i++ {
			out.WriteString(chunk)
		}
	default:
		fmt.Fprintf(out, "Status: 404\nContent-Type: text/plain\n\nno behaviour %q", os.Getenv("PATH_INFO"))
	}
}

// placeOrder mirrors the order component: decode the line items, answer 201
// with an order number.
func placeOrder(out *bufio.Writer) {
	var o order
	if err := json.NewDecoder(os.Stdin).Decode(&o); err != nil || len(o.Items) == 0 {
		writeJSON(out, 400, map[string]any{"status": 400, "error": "Bad Request", "path": os.Getenv("PATH_INFO")})
		return
	}
	var id [16]byte
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	fmt.Fprintf(out, "Status: 201\nContent-Type: text/plain\n\nOrder Number %x-%x-%x-%x-%x Placed Successfully",
		id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

func writeJSON(out *bufio.Writer, status int, v any) {
	fmt.Fprintf(out, "Status: %d\nContent-Type: application/json\n\n", status)
	json.NewEncoder(out).Encode(v)
}
