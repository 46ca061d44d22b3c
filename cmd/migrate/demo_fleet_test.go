package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Without java and mvn, the spring demo says what to install and fails.
func TestSpringDemoNeedsJavaAndMaven(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("JAVA_HOME", "")
	var out bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &out}
	err := runDemoFleet(context.Background(), &demoOptions{dir: t.TempDir(), fleet: demoFleetSpring}, &globalOptions{}, s)
	if err == nil || !strings.Contains(err.Error(), "install a JDK (17 or later) and Maven") {
		t.Fatalf("err = %v", err)
	}
}

func TestDemoFleetUnknown(t *testing.T) {
	var out bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &out}
	err := runDemoFleet(context.Background(), &demoOptions{dir: t.TempDir(), fleet: "quarkus"}, &globalOptions{}, s)
	if err == nil || !strings.Contains(err.Error(), `--fleet "quarkus"`) {
		t.Fatalf("err = %v", err)
	}
}
