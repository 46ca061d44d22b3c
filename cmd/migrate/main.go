// Command migrate moves a fleet of Spring Boot services onto WebAssembly
// components route by route: analyze, plan, proxy, shadow, cut over, report.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], systemStreams()))
}
