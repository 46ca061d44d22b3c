package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// composeFileName matches the names Docker Compose looks for by default
// (and the usual variants: docker-compose.prod.yml, compose.override.yaml).
var composeFileName = regexp.MustCompile(`^(docker-)?compose([.-][\w.-]+)?\.ya?ml$`)

// isComposeFile says whether a cluster input is a compose file: by its name,
// or by its content (top-level services: and no Kubernetes kind:).
func isComposeFile(input string, data []byte) bool {
	if composeFileName.MatchString(strings.ToLower(filepath.Base(input))) {
		return true
	}
	if !bytes.Contains(data, []byte("services:")) {
		return false
	}
	first := splitYAMLDocuments(data)
	if len(first) != 1 {
		return false
	}
	var top map[string]json.RawMessage
	if err := yaml.Unmarshal(first[0], &top); err != nil {
		return false
	}
	_, hasServices := top["services"]
	_, hasKind := top["kind"]
	return hasServices && !hasKind
}

// composeFile is the part of the Compose specification analyze reads.
type composeFile struct {
	Services map[string]json.RawMessage `json:"services"`
}

type composeService struct {
	Image       string            `json:"image"`
	Ports       []json.RawMessage `json:"ports"`
	Expose      []json.RawMessage `json:"expose"`
	Environment json.RawMessage   `json:"environment"`
	DependsOn   json.RawMessage   `json:"depends_on"`
	Deploy      *struct {
		Replicas  *int `json:"replicas"`
		Resources struct {
			Limits       map[string]json.RawMessage `json:"limits"`
			Reservations map[string]json.RawMessage `json:"reservations"`
		} `json:"resources"`
	} `json:"deploy"`
	Healthcheck *struct {
		Test json.RawMessage `json:"test"`
	} `json:"healthcheck"`
}

// readCompose turns each compose service into a workload.
func (c *clusterSet) readCompose(input string, data []byte) {
	var f composeFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		c.fail(input, "compose file: %v", err)
		return
	}
	if len(f.Services) == 0 {
		c.fail(input, "compose file has no services")
		return
	}
	names := make([]string, 0, len(f.Services))
	for n := range f.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		w, err := composeWorkload(input, name, f.Services[name])
		if err != nil {
			c.fail(input, "services.%s: %v", name, err)
			continue
		}
		c.workloads = append(c.workloads, w)
	}
}

func composeWorkload(input, name string, raw json.RawMessage) (clusterWorkload, error) {
	var s composeService
	if err := json.Unmarshal(raw, &s); err != nil {
		return clusterWorkload{}, fmt.Errorf("not a service definition: %v", err)
	}
	w := clusterWorkload{
		name: name, sources: []string{fmt.Sprintf("%s#services.%s", input, name)}, compose: true,
		deployment: Deployment{Kind: "compose", Replicas: 1, Image: s.Image},
		envValues:  map[string]string{},
	}
	d := &w.deployment
	for _, p := range s.Ports {
		port, err := composePort(p)
		if err != nil {
			return w, fmt.Errorf("ports: %v", err)
		}
		if port.Port > 0 {
			d.Ports = append(d.Ports, port)
		}
	}
	for _, p := range s.Expose {
		if port, err := composePort(p); err == nil && port.Port > 0 {
			d.Ports = append(d.Ports, port)
		}
	}
	if len(d.Ports) > 0 {
		d.Upstream = fmt.Sprintf("http://%s:%d", name, d.Ports[0].Port)
	}
	env, err := composeEnvironment(s.Environment)
	if err != nil {
		return w, fmt.Errorf("environment: %v", err)
	}
	for _, kv := range env {
		d.Env = append(d.Env, kv[0])
		if kv[1] != "" {
			w.envValues[kv[0]] = kv[1]
		}
	}
	if w.dependsOn, err = composeDependsOn(s.DependsOn); err != nil {
		return w, fmt.Errorf("depends_on: %v", err)
	}
	if s.Deploy != nil {
		if s.Deploy.Replicas != nil {
			d.Replicas = *s.Deploy.Replicas
		}
		d.Resources = Resources{
			Requests: composeResources(s.Deploy.Resources.Reservations),
			Limits:   composeResources(s.Deploy.Resources.Limits),
		}
	}
	if s.Healthcheck != nil && len(s.Healthcheck.Test) > 0 {
		d.Probes = append(d.Probes, composeProbe(s.Healthcheck.Test))
	}
	return w, nil
}

// composePort reads the short ("8081:8080", "127.0.0.1:8081:8080/tcp",
// "8080") or long ({target, published, protocol}) port syntax and returns
// the container port.
func composePort(raw json.RawMessage) (Port, error) {
	var long struct {
		Name     string          `json:"name"`
		Target   json.RawMessage `json:"target"`
		Protocol string          `json:"protocol"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		if err := json.Unmarshal(raw, &long); err != nil {
			return Port{}, err
		}
		n, err := strconv.Atoi(scalarText(long.Target))
		if err != nil {
			return Port{}, fmt.Errorf("target %s is not a port number", long.Target)
		}
		return Port{Name: long.Name, Port: n, Protocol: strings.ToUpper(long.Protocol)}, nil
	}
	spec := scalarText(raw)
	spec, proto, _ := strings.Cut(spec, "/")
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		spec = spec[i+1:]
	}
	spec, _, _ = strings.Cut(spec, "-") // a range: its first port
	n, err := strconv.Atoi(spec)
	if err != nil {
		return Port{}, fmt.Errorf("%s is not a port", scalarText(raw))
	}
	return Port{Port: n, Protocol: strings.ToUpper(proto)}, nil
}

// composeEnvironment reads the map or the list ("K=V", or "K" to pass
// through from the host) form, as ordered name/value pairs.
func composeEnvironment(raw json.RawMessage) ([][2]string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	var out [][2]string
	if t[0] == '[' {
		var list []string
		if err := json.Unmarshal(t, &list); err != nil {
			return nil, err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			if k != "" {
				out = append(out, [2]string{k, v})
			}
		}
		return out, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := ""
		if !bytes.Equal(bytes.TrimSpace(m[k]), []byte("null")) {
			v = scalarText(m[k])
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// composeDependsOn reads the list or the map (service → condition) form.
func composeDependsOn(raw json.RawMessage) ([]string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	if t[0] == '[' {
		var list []string
		err := json.Unmarshal(t, &list)
		return list, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// composeResources maps deploy.resources limits/reservations onto the
// Kubernetes names (cpus → cpu) so every inventory reads the same way.
func composeResources(m map[string]json.RawMessage) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		switch k {
		case "cpus":
			out["cpu"] = scalarText(v)
		case "memory":
			out["memory"] = scalarText(v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// composeHealthURL finds an http URL in a healthcheck command.
var composeHealthURL = regexp.MustCompile(`https?://[^\s"']+`)

// composeProbe turns a healthcheck into a readiness probe (compose gates
// depends_on: service_healthy on it), with the path and port of the URL
// it polls when it polls one.
func composeProbe(test json.RawMessage) Probe {
	var cmd string
	var list []string
	if json.Unmarshal(test, &list) == nil {
		cmd = strings.Join(list, " ")
	} else {
		cmd = scalarText(test)
	}
	p := Probe{Type: "readiness"}
	if m := composeHealthURL.FindString(cmd); m != "" {
		if i := strings.Index(m, "://"); i >= 0 {
			hostPath := m[i+3:]
			host, path, _ := strings.Cut(hostPath, "/")
			p.Path = "/" + path
			if _, port, ok := strings.Cut(host, ":"); ok {
				p.Port = port
			}
		}
	}
	return p
}
