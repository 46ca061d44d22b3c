package analyze

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// clusterMaxFile bounds one manifest or compose file (and stdin).
const clusterMaxFile = 32 << 20

// clusterIgnoredKinds are configuration objects that say nothing about how
// a service runs that analyze uses; they are skipped without a note. Other
// kinds migrate does not read get a note in the returned errors.
var clusterIgnoredKinds = map[string]bool{
	"Namespace": true, "ConfigMap": true, "Secret": true, "ServiceAccount": true,
	"Role": true, "RoleBinding": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"PersistentVolume": true, "PersistentVolumeClaim": true, "HorizontalPodAutoscaler": true,
	"PodDisruptionBudget": true, "NetworkPolicy": true, "Kustomization": true,
	"ReplicaSet": true, "Pod": true, "Endpoints": true, "EndpointSlice": true, "Event": true,
}

// ReadCluster reads how the fleet is deployed from Kubernetes manifests
// (YAML or JSON, multi-document, `kind: List` as `kubectl get -o yaml`
// prints) and docker-compose files. inputs are files, directories (read
// recursively for *.yaml, *.yml and *.json) or "-" for stdin.
//
// It returns one Service per workload (Deployment, StatefulSet, compose
// service), merged by name across inputs, with Deployment filled in:
// replicas, image, ports, resources, probes, env var names (never values
// or secret references), dependencies (from env values naming other
// services, such as INVENTORY_URL=http://inventory-service/..., and compose
// depends_on), the ingress paths routed to it, and its in-cluster upstream
// URL from the Service selecting it. Objects are matched across all inputs,
// so a Service or Ingress may sit in another file than its Deployment.
//
// Problems come back as InputErrors and do not stop the rest: an
// unreadable input, a malformed document (named by file and 1-based
// document index), and a note for each kind migrate does not read.
func ReadCluster(inputs []string, stdin io.Reader) ([]Service, []InputError) {
	var c clusterSet
	for _, in := range inputs {
		c.readInput(in, stdin)
	}
	return c.services(), c.errs
}

// clusterSet is everything read from the inputs, before resolution.
type clusterSet struct {
	workloads []clusterWorkload
	svcs      []clusterK8sService
	ingresses []clusterIngress
	errs      []InputError
}

// clusterWorkload is a Deployment, StatefulSet or compose service.
type clusterWorkload struct {
	name, namespace string
	sources         []string          // the object, then the Services and Ingresses resolved to it
	labels          map[string]string // pod template labels
	deployment      Deployment
	envValues       map[string]string // literal env values: used to find dependencies, never stored
	dependsOn       []string          // declared (compose depends_on)
	compose         bool
}

type clusterK8sService struct {
	name, namespace string
	source          string
	selector        map[string]string
	ports           []clusterServicePort
}

// clusterServicePort is the part of a Service port upstreamURL reads.
type clusterServicePort struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

type clusterIngress struct {
	namespace string
	source    string
	paths     []clusterIngressPath
}

type clusterIngressPath struct {
	path, service string
}

func (c *clusterSet) fail(input, format string, args ...any) {
	c.errs = append(c.errs, InputError{Input: input, Error: fmt.Sprintf(format, args...)})
}

func (c *clusterSet) readInput(in string, stdin io.Reader) {
	if in == "-" {
		if stdin == nil {
			c.fail("stdin", "no standard input to read")
			return
		}
		data, err := io.ReadAll(io.LimitReader(stdin, clusterMaxFile+1))
		if err != nil {
			c.fail("stdin", "read: %v", err)
			return
		}
		c.readData("stdin", data)
		return
	}
	st, err := os.Stat(in)
	if err != nil {
		c.fail(in, "%v; pass a manifest file, a directory of them, or - for stdin", unwrapPathError(err))
		return
	}
	if !st.IsDir() {
		c.readFile(in)
		return
	}
	found := 0
	err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			c.fail(p, "%v", unwrapPathError(err))
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			found++
			c.readFile(p)
		}
		return nil
	})
	if err != nil {
		c.fail(in, "%v", err)
	}
	if found == 0 {
		c.fail(in, "directory has no *.yaml, *.yml or *.json files")
	}
}

// unwrapPathError drops the path from an fs error: the input is named already.
func unwrapPathError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

func (c *clusterSet) readFile(p string) {
	f, err := os.Open(p)
	if err != nil {
		c.fail(p, "%v", unwrapPathError(err))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, clusterMaxFile+1))
	if err != nil {
		c.fail(p, "read: %v", err)
		return
	}
	c.readData(p, data)
}

// readData sorts a file into compose or Kubernetes and reads it.
func (c *clusterSet) readData(input string, data []byte) {
	if len(data) > clusterMaxFile {
		c.fail(input, "larger than %d MiB; is this a manifest?", clusterMaxFile>>20)
		return
	}
	if isComposeFile(input, data) {
		c.readCompose(input, data)
		return
	}
	for i, doc := range splitYAMLDocuments(data) {
		c.readK8sDocument(input, i+1, doc)
	}
}

// yamlSeparator matches a YAML document separator line.
var yamlSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?\r?$`)

// splitYAMLDocuments splits a multi-document YAML stream. Empty documents
// (a leading ---, comments only) are kept as empty so indexes match what a
// user counts in the file.
func splitYAMLDocuments(data []byte) [][]byte {
	locs := yamlSeparator.FindAllIndex(data, -1)
	var docs [][]byte
	start := 0
	for _, l := range locs {
		docs = append(docs, data[start:l[0]])
		start = l[1]
	}
	docs = append(docs, data[start:])
	// A stream that starts with --- has an empty first piece: drop it so the
	// first real document is document 1.
	if len(locs) > 0 && len(bytes.TrimSpace(stripYAMLComments(docs[0]))) == 0 {
		docs = docs[1:]
	}
	return docs
}

// stripYAMLComments drops whole-line comments (for emptiness checks only).
func stripYAMLComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// k8sObject is the envelope every Kubernetes object shares.
type k8sObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   k8sMeta           `json:"metadata"`
	Spec       json.RawMessage   `json:"spec"`
	Items      []json.RawMessage `json:"items"`
}

type k8sMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

func (c *clusterSet) readK8sDocument(input string, index int, doc []byte) {
	if len(bytes.TrimSpace(stripYAMLComments(doc))) == 0 {
		return
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		c.fail(input, "document %d: %v", index, err)
		return
	}
	if t := bytes.TrimSpace(js); bytes.Equal(t, []byte("null")) || len(t) == 0 {
		return
	}
	c.readK8sObject(input, fmt.Sprintf("%s#%d", input, index), fmt.Sprintf("document %d", index), js)
}

// readK8sObject reads one object (or List) given as JSON; where names it
// for sources, what for errors.
func (c *clusterSet) readK8sObject(input, where, what string, js []byte) {
	var obj k8sObject
	if err := json.Unmarshal(js, &obj); err != nil {
		c.fail(input, "%s: not a Kubernetes object: %v", what, err)
		return
	}
	if obj.Kind == "" {
		c.fail(input, "%s: no kind; is this a Kubernetes manifest?", what)
		return
	}
	if strings.HasSuffix(obj.Kind, "List") && obj.Items != nil {
		for i, item := range obj.Items {
			c.readK8sObject(input, fmt.Sprintf("%s items[%d]", where, i), fmt.Sprintf("%s items[%d]", what, i), item)
		}
		return
	}
	source := fmt.Sprintf("%s %s/%s", where, obj.Kind, obj.Metadata.Name)
	var err error
	switch obj.Kind {
	case "Deployment", "StatefulSet":
		err = c.readWorkload(obj, source)
	case "Service":
		err = c.readK8sService(obj, source)
	case "Ingress":
		err = c.readIngress(obj, source)
	default:
		if !clusterIgnoredKinds[obj.Kind] {
			c.fail(input, "%s: kind %s %q skipped: migrate reads Deployment, StatefulSet, Service and Ingress", what, obj.Kind, obj.Metadata.Name)
		}
		return
	}
	if err != nil {
		c.fail(input, "%s (%s %q): %v", what, obj.Kind, obj.Metadata.Name, err)
	}
}

// k8sWorkloadSpec is the part of a Deployment/StatefulSet spec analyze reads.
type k8sWorkloadSpec struct {
	Replicas *int `json:"replicas"`
	Template struct {
		Metadata k8sMeta `json:"metadata"`
		Spec     struct {
			Containers []k8sContainer `json:"containers"`
		} `json:"spec"`
	} `json:"template"`
}

type k8sContainer struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
		Protocol      string `json:"protocol"`
	} `json:"ports"`
	Env []struct {
		Name      string          `json:"name"`
		Value     string          `json:"value"`
		ValueFrom json.RawMessage `json:"valueFrom"`
	} `json:"env"`
	Resources struct {
		Requests map[string]json.RawMessage `json:"requests"`
		Limits   map[string]json.RawMessage `json:"limits"`
	} `json:"resources"`
	ReadinessProbe *k8sProbe `json:"readinessProbe"`
	LivenessProbe  *k8sProbe `json:"livenessProbe"`
	StartupProbe   *k8sProbe `json:"startupProbe"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string          `json:"path"`
		Port json.RawMessage `json:"port"`
	} `json:"httpGet"`
	TCPSocket *struct {
		Port json.RawMessage `json:"port"`
	} `json:"tcpSocket"`
	GRPC *struct {
		Port json.RawMessage `json:"port"`
	} `json:"grpc"`
}

// scalarText renders a JSON scalar (Kubernetes int-or-string, quantities
// written as numbers) as text.
func scalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.TrimSpace(string(raw))
}

func quantities(m map[string]json.RawMessage) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = scalarText(v)
	}
	return out
}

func (c *clusterSet) readWorkload(obj k8sObject, source string) error {
	if obj.Metadata.Name == "" {
		return fmt.Errorf("no metadata.name")
	}
	var spec k8sWorkloadSpec
	if len(obj.Spec) > 0 {
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			return fmt.Errorf("spec: %v", err)
		}
	}
	w := clusterWorkload{
		name: obj.Metadata.Name, namespace: obj.Metadata.Namespace, sources: []string{source},
		labels:     spec.Template.Metadata.Labels,
		deployment: Deployment{Kind: obj.Kind, Replicas: 1},
		envValues:  map[string]string{},
	}
	if spec.Replicas != nil {
		w.deployment.Replicas = *spec.Replicas
	}
	cs := spec.Template.Spec.Containers
	if len(cs) == 0 {
		return fmt.Errorf("no containers in spec.template.spec")
	}
	main := cs[0]
	for _, ct := range cs {
		if ct.Name == obj.Metadata.Name {
			main = ct
		}
	}
	d := &w.deployment
	d.Image = main.Image
	for _, p := range main.Ports {
		d.Ports = append(d.Ports, Port{Name: p.Name, Port: p.ContainerPort, Protocol: p.Protocol})
	}
	d.Resources = Resources{Requests: quantities(main.Resources.Requests), Limits: quantities(main.Resources.Limits)}
	for _, pr := range []struct {
		kind  string
		probe *k8sProbe
	}{{"readiness", main.ReadinessProbe}, {"liveness", main.LivenessProbe}, {"startup", main.StartupProbe}} {
		if pr.probe == nil {
			continue
		}
		p := Probe{Type: pr.kind}
		switch {
		case pr.probe.HTTPGet != nil:
			p.Path, p.Port = cmp.Or(pr.probe.HTTPGet.Path, "/"), scalarText(pr.probe.HTTPGet.Port)
		case pr.probe.TCPSocket != nil:
			p.Port = scalarText(pr.probe.TCPSocket.Port)
		case pr.probe.GRPC != nil:
			p.Port = scalarText(pr.probe.GRPC.Port)
		}
		d.Probes = append(d.Probes, p)
	}
	for _, e := range main.Env {
		if e.Name == "" {
			continue
		}
		d.Env = append(d.Env, e.Name)
		if len(e.ValueFrom) == 0 && e.Value != "" {
			w.envValues[e.Name] = e.Value
		}
	}
	c.workloads = append(c.workloads, w)
	return nil
}

func (c *clusterSet) readK8sService(obj k8sObject, source string) error {
	var spec struct {
		Selector map[string]string    `json:"selector"`
		Ports    []clusterServicePort `json:"ports"`
	}
	if len(obj.Spec) > 0 {
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			return fmt.Errorf("spec: %v", err)
		}
	}
	c.svcs = append(c.svcs, clusterK8sService{
		name: obj.Metadata.Name, namespace: obj.Metadata.Namespace, source: source,
		selector: spec.Selector, ports: spec.Ports,
	})
	return nil
}

// k8sIngressBackend covers networking.k8s.io/v1 and the older v1beta1 shape.
type k8sIngressBackend struct {
	Service *struct {
		Name string `json:"name"`
	} `json:"service"`
	ServiceName string `json:"serviceName"`
}

func (b k8sIngressBackend) name() string {
	if b.Service != nil {
		return b.Service.Name
	}
	return b.ServiceName
}

func (c *clusterSet) readIngress(obj k8sObject, source string) error {
	var spec struct {
		DefaultBackend *k8sIngressBackend `json:"defaultBackend"`
		Backend        *k8sIngressBackend `json:"backend"`
		Rules          []struct {
			HTTP *struct {
				Paths []struct {
					Path    string            `json:"path"`
					Backend k8sIngressBackend `json:"backend"`
				} `json:"paths"`
			} `json:"http"`
		} `json:"rules"`
	}
	if len(obj.Spec) > 0 {
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			return fmt.Errorf("spec: %v", err)
		}
	}
	ing := clusterIngress{namespace: obj.Metadata.Namespace, source: source}
	for _, r := range spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if n := p.Backend.name(); n != "" {
				ing.paths = append(ing.paths, clusterIngressPath{path: cmp.Or(p.Path, "/"), service: n})
			}
		}
	}
	for _, b := range []*k8sIngressBackend{spec.DefaultBackend, spec.Backend} {
		if b != nil && b.name() != "" {
			ing.paths = append(ing.paths, clusterIngressPath{path: "/", service: b.name()})
		}
	}
	c.ingresses = append(c.ingresses, ing)
	return nil
}

// sameNamespace treats "" as "any": compose services and manifests without
// a namespace still match.
func sameNamespace(a, b string) bool { return a == "" || b == "" || a == b }

// selects says whether selector (non-empty) matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// services resolves Services, Ingresses and env references to workloads
// and merges workloads of the same name.
func (c *clusterSet) services() []Service {
	// Which workloads each Service name fronts.
	fronts := map[string][]int{} // Service (or compose service) name → workload indexes
	for _, s := range c.svcs {
		for i, w := range c.workloads {
			if w.compose || !sameNamespace(s.namespace, w.namespace) || !selects(s.selector, w.labels) {
				continue
			}
			fronts[s.name] = append(fronts[s.name], i)
			d := &c.workloads[i].deployment
			if d.Upstream == "" && len(s.ports) > 0 {
				d.Upstream = upstreamURL(s)
			}
			c.workloads[i].sources = append(c.workloads[i].sources, s.source)
		}
	}
	for i, w := range c.workloads {
		if w.compose {
			fronts[w.name] = append(fronts[w.name], i) // compose service names are DNS names
		}
	}
	for _, ing := range c.ingresses {
		for _, p := range ing.paths {
			for _, i := range fronts[p.service] {
				if !sameNamespace(ing.namespace, c.workloads[i].namespace) {
					continue
				}
				w := &c.workloads[i]
				w.deployment.Routes = appendMissing(w.deployment.Routes, p.path)
				w.sources = appendMissing(w.sources, ing.source)
			}
		}
	}
	resolve := func(host string) []string {
		host = strings.ToLower(host)
		clusterLocal := !strings.Contains(host, ".") || strings.HasSuffix(host, ".svc.cluster.local") || strings.HasSuffix(host, ".svc")
		label, _, _ := strings.Cut(host, ".")
		var names []string
		for _, i := range fronts[label] {
			names = append(names, c.workloads[i].name)
		}
		if len(names) == 0 {
			for _, w := range c.workloads {
				if w.name == label {
					names = append(names, w.name)
				}
			}
		}
		if len(names) == 0 && clusterLocal && host != "localhost" && !isIPAddress(host) {
			names = append(names, label) // a cluster-local name not among the inputs
		}
		return names
	}
	for i := range c.workloads {
		w := &c.workloads[i]
		var deps []string
		for _, name := range slices.Sorted(maps.Keys(w.envValues)) {
			for _, host := range envHosts(name, w.envValues[name]) {
				deps = append(deps, resolve(host)...)
			}
		}
		deps = slices.DeleteFunc(append(deps, w.dependsOn...), func(d string) bool { return d == w.name })
		w.deployment.DependsOn = appendMissing(w.deployment.DependsOn, deps...)
		sort.Strings(w.deployment.DependsOn)
	}
	return mergeWorkloads(c.workloads)
}

// upstreamURL is how a proxy in the cluster reaches a Service: its DNS
// name (with the namespace when there is one) and its HTTP-looking port.
func upstreamURL(s clusterK8sService) string {
	port := s.ports[0]
	for _, p := range s.ports {
		if p.Name == "http" || p.Name == "web" || p.Port == 80 || p.Port == 8080 {
			port = p
			break
		}
	}
	host := s.name
	if s.namespace != "" && s.namespace != "default" {
		host += "." + s.namespace
	}
	return fmt.Sprintf("http://%s:%d", host, port.Port)
}

// envHostSuffixes mark env vars whose value is a bare host list
// (SPRING_DATA_REDIS_HOST=redis, SPRING_KAFKA_BOOTSTRAP_SERVERS=kafka:9092).
var envHostSuffixes = []string{"_HOST", "_HOSTS", "_HOSTNAME", "_SERVER", "_SERVERS", "_BROKERS", "_ADDRESS", "_ADDR"}

// envHosts extracts the hosts an env value points at: URLs of any scheme
// (jdbc: prefix allowed, comma-separated lists too), or host[:port] lists
// in variables named like *_HOST / *_SERVERS.
func envHosts(name, value string) []string {
	var hosts []string
	for _, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "://") {
			u, err := url.Parse(strings.TrimPrefix(part, "jdbc:"))
			if err == nil && u.Hostname() != "" {
				hosts = append(hosts, u.Hostname())
			}
			continue
		}
		for _, suf := range envHostSuffixes {
			if strings.HasSuffix(name, suf) {
				h := part
				if hh, _, err := net.SplitHostPort(part); err == nil {
					h = hh
				}
				if h != "" && !strings.ContainsAny(h, " /=") {
					hosts = append(hosts, h)
				}
				break
			}
		}
	}
	return hosts
}

// mergeWorkloads makes one Service per name: the first deployment found
// wins, later ones add their routes, dependencies and sources.
func mergeWorkloads(ws []clusterWorkload) []Service {
	index := map[string]int{}
	var out []Service
	for _, w := range ws {
		i, ok := index[w.name]
		if !ok {
			d := w.deployment
			index[w.name] = len(out)
			out = append(out, Service{Name: w.name, Namespace: w.namespace, Sources: slices.Clone(w.sources), Deployment: &d})
			continue
		}
		s := &out[i]
		s.Sources = appendMissing(s.Sources, w.sources...)
		if s.Namespace == "" {
			s.Namespace = w.namespace
		}
		d := s.Deployment
		d.Routes = appendMissing(d.Routes, w.deployment.Routes...)
		d.DependsOn = appendMissing(d.DependsOn, w.deployment.DependsOn...)
		sort.Strings(d.DependsOn)
		if d.Upstream == "" {
			d.Upstream = w.deployment.Upstream
		}
	}
	return out
}

// appendMissing appends the values list does not hold yet, in order, so a
// value that comes twice is kept once.
func appendMissing(list []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
