package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"sigs.k8s.io/yaml"
)

// Limits on what AnalyzeOpenAPI reads. A document bigger than this is not an
// API description a service serves, and an unbounded read from a URL would let
// a misbehaving endpoint exhaust memory.
const (
	// MaxOpenAPIBytes caps every document read: the root and each external $ref.
	MaxOpenAPIBytes = 16 << 20
	// OpenAPIFetchTimeout bounds each HTTP fetch of a document or $ref target.
	OpenAPIFetchTimeout = 15 * time.Second
	// maxExternalDocuments caps how many files or URLs one document may pull in
	// through external $refs.
	maxExternalDocuments = 200
)

// API formats, as recorded in API.Format.
const (
	FormatOpenAPI30 = "openapi-3.0"
	FormatOpenAPI31 = "openapi-3.1"
	FormatSwagger20 = "swagger-2.0"
)

// methodOrder sorts operations on one path the way people read an API:
// reads before writes.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

// AnalyzeOpenAPI reads an OpenAPI 3.0/3.1 or Swagger 2.0 document (JSON or
// YAML) from a file path or an http(s) URL, resolves relative external $refs,
// and lists every operation with its full path. Validation problems are
// reported in API.Problems rather than failing; an error is returned only
// when the document cannot be read or parsed at all.
func AnalyzeOpenAPI(ctx context.Context, source string) (*API, error) {
	data, location, err := readOpenAPISource(ctx, source)
	if err != nil {
		return nil, err
	}
	return analyzeOpenAPIData(ctx, source, data, location)
}

// readOpenAPISource reads the root document and returns the URL that relative
// $refs resolve against.
func readOpenAPISource(ctx context.Context, source string) ([]byte, *url.URL, error) {
	if isHTTPURL(source) {
		u, err := url.Parse(source)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: not a valid URL: %w", source, err)
		}
		data, err := fetchLimited(ctx, http.DefaultClient, u.String(), MaxOpenAPIBytes, OpenAPIFetchTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", source, err)
		}
		return data, u, nil
	}
	data, err := readFileLimited(source, MaxOpenAPIBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	return data, &url.URL{Path: filepath.ToSlash(abs)}, nil
}

// analyzeOpenAPIData does the work of AnalyzeOpenAPI on bytes already read.
// location is where relative $refs resolve from; nil disables external refs.
// It never panics: a panic inside the parser becomes an error naming source.
func analyzeOpenAPIData(ctx context.Context, source string, data []byte, location *url.URL) (api *API, err error) {
	defer func() {
		if r := recover(); r != nil {
			api, err = nil, fmt.Errorf("%s: the OpenAPI parser failed on this document (%v); check that it is well-formed", source, r)
		}
	}()

	version, data, err := sniffOpenAPIVersion(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", source, oneLine(err.Error()))
	}
	api = &API{Source: source, Operations: []Operation{}}
	loader := newOpenAPILoader(ctx, location)

	// Every $ref is checked before kin-openapi loads the document, so a
	// broken one is reported where it is and in terms of what is missing.
	var tree any
	if js, err := yaml.YAMLToJSON(data); err == nil {
		_ = json.Unmarshal(js, &tree) // it parsed once already
	}
	refs := newRefDocs(location, tree, func(u *url.URL) ([]byte, error) { return loader.ReadFromURIFunc(loader, u) })
	broken := refs.brokenRefs()
	api.Problems = append(api.Problems, broken...)

	var doc *openapi3.T
	switch {
	case version.swagger != "":
		if !strings.HasPrefix(version.swagger, "2.") {
			return nil, fmt.Errorf("%s: swagger version %q is not supported; migrate reads Swagger 2.0 and OpenAPI 3.x", source, version.swagger)
		}
		api.Format = FormatSwagger20
		if len(broken) > 0 {
			break
		}
		bundled, err := json.Marshal(refs.bundleSwagger2())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		var doc2 openapi2.T
		if err := openapi2.UnmarshalFromData(bundled, &doc2); err != nil {
			api.Problems = append(api.Problems, Problem{Location: "document", Message: "not a valid Swagger 2.0 document: " + oneLine(err.Error())})
			break
		}
		doc, err = openapi2conv.ToV3WithLoader(&doc2, loader, location)
		if err != nil {
			api.Problems = append(api.Problems, Problem{Location: "document", Message: "converting Swagger 2.0 to OpenAPI 3: " + oneLine(err.Error())})
			doc = nil
		}
	case strings.HasPrefix(version.openapi, "3."):
		api.Format = FormatOpenAPI30
		if !strings.HasPrefix(version.openapi, "3.0") {
			api.Format = FormatOpenAPI31
		}
		if len(broken) > 0 {
			break
		}
		if location != nil {
			doc, err = loader.LoadFromDataWithPath(data, location)
		} else {
			doc, err = loader.LoadFromData(data)
		}
		if err != nil {
			api.Problems = append(api.Problems, Problem{Location: "document", Message: oneLine(err.Error())})
			doc = nil
		}
	case version.openapi != "":
		return nil, fmt.Errorf("%s: openapi version %q is not supported; migrate reads Swagger 2.0 and OpenAPI 3.x", source, version.openapi)
	default:
		return nil, fmt.Errorf("%s: neither an \"openapi\" nor a \"swagger\" version field at the top level; is this an OpenAPI document?", source)
	}

	if doc != nil {
		fillFromDocument(api, doc)
		api.Problems = append(api.Problems, validationProblems(ctx, doc)...)
	} else {
		// The document parsed but could not be fully loaded (typically an
		// unresolvable $ref). Its operations are still worth listing: they
		// are read from the raw tree.
		raw, _ := tree.(map[string]any)
		fillFromRaw(api, raw, api.Format == FormatSwagger20)
	}
	sortOperations(api.Operations)
	slices.SortStableFunc(api.Problems, func(a, b Problem) int { return strings.Compare(a.Location, b.Location) })
	return api, nil
}

// openAPIVersion holds the two version fields that tell the formats apart.
type openAPIVersion struct {
	swagger, openapi string
}

// sniffOpenAPIVersion parses the document generically, reporting YAML/JSON
// syntax errors with their position. It returns the version fields and the
// document for kin-openapi: data itself, or a JSON rewrite when the version
// needs fixing.
func sniffOpenAPIVersion(data []byte) (openAPIVersion, []byte, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return openAPIVersion{}, nil, errors.New("the document is empty")
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return openAPIVersion{}, nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	var head struct {
		Swagger any `json:"swagger"`
		OpenAPI any `json:"openapi"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return openAPIVersion{}, nil, errors.New("the document is not an object (an OpenAPI document is a mapping with an \"openapi\" or \"swagger\" field)")
	}
	v := openAPIVersion{swagger: scalarString(head.Swagger), openapi: scalarString(head.OpenAPI)}
	_, swaggerIsNumber := head.Swagger.(float64)
	_, openapiIsNumber := head.OpenAPI.(float64)
	if swaggerIsNumber || openapiIsNumber {
		// `swagger: 2.0` unquoted is a YAML number, which kin-openapi's
		// typed decoding refuses; hand it the version as text.
		var raw map[string]any
		if json.Unmarshal(js, &raw) == nil {
			if swaggerIsNumber {
				raw["swagger"] = v.swagger
			}
			if openapiIsNumber {
				raw["openapi"] = v.openapi
			}
			if fixed, err := json.Marshal(raw); err == nil {
				return v, fixed, nil
			}
		}
	}
	return v, data, nil
}

// scalarString renders a YAML scalar as text: `swagger: 2.0` reads as a number.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		s := fmt.Sprint(x)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// newOpenAPILoader builds a loader that follows external $refs with the same
// limits as the root read. A document read from a file may refer to other
// files and to http(s) URLs; a document read from a URL may only refer to
// the same scheme and host, so a remote document cannot make migrate read
// local files or reach other hosts.
func newOpenAPILoader(ctx context.Context, root *url.URL) *openapi3.Loader {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	loader.IsExternalRefsAllowed = root != nil
	// Counted by document, not by read: the $ref check and the loader each
	// read a document once.
	read := map[string]bool{}
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if root == nil {
			return nil, fmt.Errorf("external reference %s: only documents read from a file or URL may use external $refs", u)
		}
		read[u.String()] = true
		if len(read) > maxExternalDocuments {
			return nil, fmt.Errorf("external reference %s: more than %d external documents", u, maxExternalDocuments)
		}
		switch {
		case u.Scheme == "http" || u.Scheme == "https":
			if isHTTPURL(root.String()) && (u.Scheme != root.Scheme || u.Host != root.Host) {
				return nil, fmt.Errorf("external reference %s: a document from %s may only refer to the same host", u, root.Host)
			}
			return fetchLimited(ctx, http.DefaultClient, u.String(), MaxOpenAPIBytes, OpenAPIFetchTimeout)
		case u.Scheme == "file" && isHTTPURL(root.String()):
			return nil, fmt.Errorf("external reference %s: a document from %s may not refer to local files", u, root.Host)
		case u.Scheme == "" || u.Scheme == "file":
			if isHTTPURL(root.String()) {
				// A relative ref inside a remote document resolves to a
				// path on the same server.
				ref := *root
				ref.Path, ref.RawQuery, ref.Fragment = u.Path, "", ""
				return fetchLimited(ctx, http.DefaultClient, ref.String(), MaxOpenAPIBytes, OpenAPIFetchTimeout)
			}
			return readFileLimited(filepath.FromSlash(path.Clean(u.Path)), MaxOpenAPIBytes)
		}
		return nil, fmt.Errorf("external reference %s: scheme %q is not supported", u, u.Scheme)
	}
	return loader
}

// fillFromDocument copies title, servers and operations from a loaded document.
func fillFromDocument(api *API, doc *openapi3.T) {
	if doc.Info != nil {
		api.Title, api.Version = doc.Info.Title, doc.Info.Version
	}
	for _, s := range doc.Servers {
		if s != nil {
			api.Servers = append(api.Servers, s.URL)
		}
	}
	base := ""
	if len(doc.Servers) > 0 && doc.Servers[0] != nil {
		base = serverBasePath(doc.Servers[0].URL, func(name string) string {
			if v := doc.Servers[0].Variables[name]; v != nil {
				return v.Default
			}
			return ""
		})
	}
	if doc.Paths == nil {
		return
	}
	for _, p := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(p)
		if item == nil {
			continue
		}
		for method, op := range item.Operations() {
			if op == nil {
				continue
			}
			api.Operations = append(api.Operations, Operation{
				Method:      strings.ToUpper(method),
				Path:        joinBasePath(base, p),
				OperationID: op.OperationID,
				Tags:        slices.Clone(op.Tags),
			})
		}
	}
}

// fillFromRaw lists operations straight from the parsed tree. It is the
// fallback when the typed load failed, so it trusts nothing about shapes.
func fillFromRaw(api *API, raw map[string]any, swagger bool) {
	if info, ok := raw["info"].(map[string]any); ok {
		api.Title, _ = info["title"].(string)
		api.Version = scalarString(info["version"])
	}
	base := ""
	if swagger {
		base, _ = raw["basePath"].(string)
	} else if servers, ok := raw["servers"].([]any); ok {
		for i, s := range servers {
			m, _ := s.(map[string]any)
			u, _ := m["url"].(string)
			if u == "" {
				continue
			}
			api.Servers = append(api.Servers, u)
			if i == 0 {
				vars, _ := m["variables"].(map[string]any)
				base = serverBasePath(u, func(name string) string {
					v, _ := vars[name].(map[string]any)
					d, _ := v["default"].(string)
					return d
				})
			}
		}
	}
	paths, _ := raw["paths"].(map[string]any)
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			m := strings.ToUpper(method)
			if !slices.Contains(methodOrder, m) {
				continue
			}
			o, _ := op.(map[string]any)
			id, _ := o["operationId"].(string)
			var tags []string
			if ts, ok := o["tags"].([]any); ok {
				for _, t := range ts {
					if s, ok := t.(string); ok {
						tags = append(tags, s)
					}
				}
			}
			api.Operations = append(api.Operations, Operation{Method: m, Path: joinBasePath(base, p), OperationID: id, Tags: tags})
		}
	}
}

// serverBasePath returns the path part of a server URL ("http://host/api" →
// "/api", "/v1" → "/v1"), with {variables} replaced by their defaults.
func serverBasePath(raw string, variable func(string) string) string {
	// One pass, so a default that itself contains braces cannot loop.
	var b strings.Builder
	for {
		i := strings.IndexByte(raw, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(raw[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(raw[:i])
		b.WriteString(variable(raw[i+1 : i+j]))
		raw = raw[i+j+1:]
	}
	b.WriteString(raw)
	u, err := url.Parse(b.String())
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

// joinBasePath puts a server base path in front of a path template.
func joinBasePath(base, p string) string {
	base = strings.TrimRight(base, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return base + p
}

// sortOperations orders operations by path, then reads before writes, so the
// inventory (and every plan built from it) is the same on every run.
func sortOperations(ops []Operation) {
	rank := func(m string) int {
		if i := slices.Index(methodOrder, m); i >= 0 {
			return i
		}
		return len(methodOrder)
	}
	slices.SortStableFunc(ops, func(a, b Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		if c := rank(a.Method) - rank(b.Method); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
}

// validationProblems runs kin-openapi's validation with every problem
// collected, and turns each into a Problem with a dotted location such as
// "paths./pets.get.responses".
func validationProblems(ctx context.Context, doc *openapi3.T) []Problem {
	err := doc.Validate(ctx, openapi3.EnableMultiError(), openapi3.DisableExamplesValidation())
	if err == nil {
		return nil
	}
	var leaves []error
	var me openapi3.MultiError
	if errors.As(err, &me) {
		leaves = flattenMultiError(me)
	} else {
		leaves = []error{err}
	}
	seen := map[Problem]bool{}
	var out []Problem
	for _, leaf := range leaves {
		p := problemFromError(leaf)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// flattenMultiError returns the leaves of directly nested MultiErrors. A
// MultiError inside a context wrapper stays whole, so its location is kept.
func flattenMultiError(me openapi3.MultiError) []error {
	var out []error
	for _, e := range me {
		if inner, ok := e.(openapi3.MultiError); ok {
			out = append(out, flattenMultiError(inner)...)
			continue
		}
		out = append(out, e)
	}
	return out
}

// problemFromError walks kin-openapi's context wrappers from the outside in,
// building the location from each, and keeps the innermost message.
func problemFromError(err error) Problem {
	var loc []string
	cur := err
walk:
	for cur != nil {
		switch e := cur.(type) {
		case *openapi3.SectionValidationError:
			loc = append(loc, e.Section)
		case *openapi3.PathValidationError:
			loc = append(loc, e.Path)
		case *openapi3.OperationValidationError:
			loc = append(loc, strings.ToLower(e.Method))
		case *openapi3.ComponentValidationError:
			loc = append(loc, e.Section, e.Name)
		case *openapi3.WebhookValidationError:
			loc = append(loc, e.Name)
		case *openapi3.ParameterFieldValidationError:
			loc = append(loc, "parameters", e.ParameterName, e.Field)
		case *openapi3.HeaderFieldValidationError:
			loc = append(loc, e.Field)
		case *openapi3.TagValidationError:
			loc = append(loc, e.Name)
		case *openapi3.PathParametersError:
			if !slices.Contains(loc, e.Path) {
				loc = append(loc, e.Path)
			}
			loc = append(loc, strings.ToLower(e.Method))
			break walk
		case *openapi3.RequiredFieldError:
			field := e.Field
			if len(loc) > 0 {
				field = strings.TrimPrefix(field, loc[len(loc)-1]+".")
			}
			field = strings.TrimPrefix(field, "operation.")
			loc = append(loc, field)
		default:
			// Descend only through known wrappers: the first other error
			// carries the message.
			break walk
		}
		cur = errors.Unwrap(cur)
	}
	msg := err.Error()
	if cur != nil {
		msg = cur.Error()
	}
	location := strings.Join(loc, ".")
	if location == "" {
		location = "document"
	}
	return Problem{Location: location, Message: oneLine(msg)}
}

// isHTTPURL reports whether source names an http(s) URL rather than a file.
func isHTTPURL(source string) bool {
	return strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://")
}

// fetchLimited GETs a URL with a deadline and refuses bodies over limit.
func fetchLimited(ctx context.Context, client *http.Client, rawURL string, limit int64, timeout time.Duration) ([]byte, error) {
	body, status, err := fetchStatus(ctx, client, rawURL, limit, timeout, "application/json, application/yaml;q=0.9, */*;q=0.5")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", rawURL, httpStatusText(status))
	}
	return body, nil
}

// fetchStatus GETs a URL and returns the (size-capped) body with its status.
func fetchStatus(ctx context.Context, client *http.Client, rawURL string, limit int64, timeout time.Duration, accept string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, 0, fmt.Errorf("GET %s: no answer within %s", rawURL, timeout)
		}
		return nil, 0, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: reading body: %w", rawURL, err)
	}
	if int64(len(body)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: response larger than %d bytes", rawURL, limit)
	}
	return body, resp.StatusCode, nil
}

// httpStatusText renders a status as "404 Not Found".
func httpStatusText(code int) string {
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

// readFileLimited reads a regular file no bigger than limit.
func readFileLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, errors.New("is a directory, not an OpenAPI document")
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// oneLine folds a multi-line message so every error stays on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return strings.Join(slices.DeleteFunc(fields, func(f string) bool { return f == "" }), "; ")
}
