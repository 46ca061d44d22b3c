package strangler

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

// An admin API nobody serves is named in words, and the cause stays
// visible to errors.Is.
func TestAdminClientUnreachableInWords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the port is now free: nothing listens there
	_, err = (&AdminClient{BaseURL: "http://" + addr}).Routes(context.Background())
	if err == nil {
		t.Fatal("no error from an admin API nobody serves")
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach the admin API at http://"+addr+": nothing listens there") {
		t.Errorf("error %q does not say nothing listens there", msg)
	}
	for _, goish := range []string{"dial tcp", `Get "`, "connect:"} {
		if strings.Contains(msg, goish) {
			t.Errorf("error %q is in Go's words (%q)", msg, goish)
		}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %q lost its cause", msg)
	}
}
