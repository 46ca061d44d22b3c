// Command reusable is the reusable test guest of package wasm, built with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared: a WASI reactor exporting
// migrate_serve, called once per request on an instance migrate may keep.
// PATH_INFO selects a behaviour.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// served counts the requests this instance answered: it grows across the
// requests of a reused instance and restarts at 1 in a new one.
var served int

// keep holds allocations so the compiler cannot drop them.
var keep [][]byte

// State a request leaves behind, in the heap and in a map, that a fresh
// instance must not see.
var (
	seen  []string
	byKey = map[string]int{}
)

// started is read by _initialize: a pre-initialized instance inherits it.
var started = time.Now()

// initHeader, set with -ldflags=-X=main.initHeader=VALUE, makes
// _initialize write the header line "X-Init: VALUE" to stdout.
var initHeader string

func init() {
	if initHeader != "" {
		fmt.Printf("X-Init: %s\n", initHeader)
	}
}

//go:wasmexport migrate_serve
func serve() {
	served++
	in := bufio.NewReader(os.Stdin)
	env := map[string]string{}
	var names []string
	for {
		line, err := in.ReadString('\n')
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
		names = append(names, k)
		if err != nil {
			break
		}
	}
	body, _ := io.ReadAll(in)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch env["PATH_INFO"] {
	case "/served":
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%d", served)
	case "/state":
		seen = append(seen, env["QUERY_STRING"])
		byKey[env["QUERY_STRING"]]++
		fmt.Fprintf(out, "Content-Type: text/plain\n\nserved=%d seen=%d keys=%d since=%d", served, len(seen), len(byKey), time.Since(started).Nanoseconds())
	case "/echo":
		fmt.Fprintf(out, "Content-Type: %s\nX-Method: %s\nX-Query: %s\n\n%s", env["CONTENT_TYPE"], env["REQUEST_METHOD"], env["QUERY_STRING"], body)
	case "/names":
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%s", strings.Join(names, "\n"))
	case "/header":
		fmt.Fprintf(out, "Content-Type: text/plain\n\n%s", env["HTTP_X_TEST"])
	case "/panic":
		panic("guest panic")
	case "/hang":
		for {
			served++
		}
	case "/sleep":
		time.Sleep(time.Hour)
	case "/grow":
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	default:
		fmt.Fprint(out, "Status: 404\nContent-Type: text/plain\n\nno such behaviour")
	}
}

func main() {}
