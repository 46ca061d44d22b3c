// Command hello is the README's complete guest that builds both ways: as a
// WAGI command (GOOS=wasip1 GOARCH=wasm go build) main answers the one
// request of the instance; as a reusable guest (add -buildmode=c-shared)
// migrate calls serve once per request on a kept instance.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// handle answers one request from its CGI variables and body.
func handle(getenv func(string) string, body io.Reader, out io.Writer) {
	b, _ := io.ReadAll(body)
	fmt.Fprintf(out, "Content-Type: text/plain\n\nhello from %s %s (%d bytes)\n",
		getenv("REQUEST_METHOD"), getenv("PATH_INFO"), len(b))
}

// main serves a WAGI command: the variables are the environment.
func main() { handle(os.Getenv, os.Stdin, os.Stdout) }

// serve serves a reused instance: the variables come first on stdin.
//
//go:wasmexport migrate_serve
func serve() {
	in := bufio.NewReader(os.Stdin)
	env := map[string]string{}
	for {
		line, err := in.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); line == "" || err != nil {
			break
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	handle(func(k string) string { return env[k] }, in, os.Stdout)
}
