package analyze

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestAnalyzeOpenAPIPublicDocuments runs every real-world document in
// testdata/openapi (see its SOURCES.md) through the analyzer.
func TestAnalyzeOpenAPIPublicDocuments(t *testing.T) {
	tests := []struct {
		file      string
		format    string
		title     string
		ops       int
		first     Operation // operations[0] after sorting
		contains  Operation // some other operation, full path included
		problemAt string    // a problem location that must be reported, "" for none expected
	}{
		{
			file: "spring-petclinic-rest.openapi.yml", format: FormatOpenAPI30, title: "Spring PetClinic", ops: 37,
			first:    Operation{Method: "GET", Path: "/petclinic/api/oops", OperationID: "failingRequest", Tags: []string{"oops"}},
			contains: Operation{Method: "POST", Path: "/petclinic/api/owners", OperationID: "addOwner", Tags: []string{"owners"}},
		},
		{
			file: "oas30-petstore-expanded.yaml", format: FormatOpenAPI30, title: "Swagger Petstore", ops: 4,
			first:    Operation{Method: "GET", Path: "/api/pets", OperationID: "findPets"},
			contains: Operation{Method: "DELETE", Path: "/api/pets/{id}", OperationID: "deletePet"},
		},
		{
			file: "oas30-uspto.yaml", format: FormatOpenAPI30, title: "USPTO Data Set API", ops: 3,
			first:    Operation{Method: "GET", Path: "/ds-api/", OperationID: "list-data-sets", Tags: []string{"metadata"}},
			contains: Operation{Method: "POST", Path: "/ds-api/{dataset}/{version}/records", OperationID: "perform-search", Tags: []string{"search"}},
		},
		{
			file: "oas31-webhook-example.yaml", format: FormatOpenAPI31, title: "Webhook Example", ops: 0,
		},
		{
			file: "swagger2-petstore.json", format: FormatSwagger20, title: "Swagger Petstore", ops: 3,
			first:    Operation{Method: "GET", Path: "/v1/pets", OperationID: "listPets", Tags: []string{"pets"}},
			contains: Operation{Method: "GET", Path: "/v1/pets/{petId}", OperationID: "showPetById", Tags: []string{"pets"}},
		},
		{
			file: "swagger2-uber.json", format: FormatSwagger20, title: "Uber API", ops: 5,
			first:    Operation{Method: "GET", Path: "/v1/estimates/price", Tags: []string{"Estimates"}},
			contains: Operation{Method: "GET", Path: "/v1/me", Tags: []string{"User"}},
		},
		{
			// Relative external $refs across three files in two directories,
			// parameters among them: valid, so no problem.
			file: "swagger2-petstore-separate/spec/swagger.json", format: FormatSwagger20, title: "Swagger Petstore", ops: 4,
			first:    Operation{Method: "GET", Path: "/api/pets", OperationID: "findPets"},
			contains: Operation{Method: "DELETE", Path: "/api/pets/{id}", OperationID: "deletePet"},
		},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			src := filepath.Join("testdata", "openapi", tt.file)
			api, err := AnalyzeOpenAPI(context.Background(), src)
			if err != nil {
				t.Fatalf("AnalyzeOpenAPI: %v", err)
			}
			if api.Source != src || api.Format != tt.format || api.Title != tt.title {
				t.Errorf("source/format/title = %q/%q/%q, want %q/%q/%q", api.Source, api.Format, api.Title, src, tt.format, tt.title)
			}
			if len(api.Operations) != tt.ops {
				t.Fatalf("%d operations, want %d: %+v", len(api.Operations), tt.ops, api.Operations)
			}
			if tt.ops == 0 {
				if api.Operations == nil {
					t.Error("Operations is nil; want an empty list so JSON says []")
				}
				return
			}
			if !equalOperation(api.Operations[0], tt.first) {
				t.Errorf("first operation = %+v, want %+v", api.Operations[0], tt.first)
			}
			found := false
			for _, op := range api.Operations {
				found = found || equalOperation(op, tt.contains)
			}
			if !found {
				t.Errorf("no operation %+v in %+v", tt.contains, api.Operations)
			}
			var locations []string
			for _, p := range api.Problems {
				locations = append(locations, p.Location)
				if p.Message == "" || strings.Contains(p.Message, "\n") {
					t.Errorf("problem %+v: message must be one non-empty line", p)
				}
			}
			if tt.problemAt != "" && !strings.Contains(strings.Join(locations, "|"), tt.problemAt) {
				t.Errorf("problems at %v, want one at %s", locations, tt.problemAt)
			}
			if tt.problemAt == "" && len(api.Problems) > 0 {
				t.Errorf("unexpected problems: %+v", api.Problems)
			}
		})
	}
	// Every shared document is covered: adding one without a row fails here.
	entries, err := os.ReadDir(filepath.Join("testdata", "openapi"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			name += "/spec/swagger.json"
		}
		if name != "SOURCES.md" && !seen[name] {
			t.Errorf("testdata/openapi/%s has no test row", name)
		}
	}
}

func equalOperation(a, b Operation) bool {
	return a.Method == b.Method && a.Path == b.Path && a.OperationID == b.OperationID &&
		strings.Join(a.Tags, ",") == strings.Join(b.Tags, ",")
}

// TestAnalyzeOpenAPIProblems checks that invalid-but-parseable documents are
// reported, with locations, rather than refused.
func TestAnalyzeOpenAPIProblems(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		ops       int
		problemAt string
		message   string
	}{
		{
			name: "operation without responses",
			doc: `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /pets:
    get:
      operationId: listPets
`,
			ops: 1, problemAt: "paths./pets.get.responses", message: "responses",
		},
		{
			name: "missing info version",
			doc:  `{"openapi":"3.0.0","info":{"title":"t"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok"}}}}}}`,
			ops:  1, problemAt: "info.version", message: "version",
		},
		{
			name: "path parameter not declared",
			doc: `openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /pets/{id}:
    get:
      responses: {"200": {description: ok}}
`,
			ops: 1, problemAt: "paths./pets/{id}.get", message: "missing: [id]",
		},
		{
			name: "unresolvable ref still lists operations",
			doc: `openapi: 3.0.0
info: {title: t, version: "1"}
servers: [{url: "http://x/base/"}]
paths:
  /a:
    get:
      responses:
        "200": {$ref: "#/components/responses/Missing"}
    post:
      operationId: makeA
      responses: {"201": {description: ok}}
`,
			ops: 2, problemAt: "paths./a.get.responses.200", message: `$ref "#/components/responses/Missing": the document has no "components" at its top level`,
		},
		{
			name: "unquoted swagger version reads as a number",
			doc:  "swagger: 2.0\ninfo: {title: t, version: \"1\"}\nbasePath: /v2\npaths:\n  /a: {get: {responses: {\"200\": {description: ok}}}}\n",
			ops:  1,
		},
		{
			name: "a Swagger 2 document kin-openapi refuses is still listed",
			doc:  "swagger: \"2.0\"\ninfo: {title: t, version: 1}\nbasePath: /v2\npaths:\n  /a: {get: {responses: {\"200\": {description: ok}}}}\n",
			ops:  1, problemAt: "document", message: "Info.version",
		},
		{
			name: "openapi 3.1 only constructs",
			doc: `openapi: 3.1.0
info: {title: t, version: "1", summary: a 3.1 field}
jsonSchemaDialect: https://json-schema.org/draft/2020-12/schema
paths:
  /things/{id}:
    get:
      operationId: getThing
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: [object, "null"]
                properties:
                  id: {type: string, const: fixed}
                  tags: {type: array, prefixItems: [{type: string}]}
                  n: {type: integer, exclusiveMinimum: 0}
                examples: [{id: fixed}]
webhooks:
  newThing:
    post:
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}}
      responses: {"200": {description: ok}}
components:
  schemas:
    Thing: {$ref: "#/components/schemas/Base", description: sibling allowed in 3.1}
    Base: {type: object}
`,
			ops: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, err := analyzeOpenAPIData(context.Background(), "doc.yaml", []byte(tt.doc), nil)
			if err != nil {
				t.Fatalf("analyzeOpenAPIData: %v", err)
			}
			if len(api.Operations) != tt.ops {
				t.Errorf("%d operations, want %d: %+v", len(api.Operations), tt.ops, api.Operations)
			}
			if tt.problemAt == "" {
				if len(api.Problems) > 0 {
					t.Errorf("unexpected problems: %+v", api.Problems)
				}
				return
			}
			for _, p := range api.Problems {
				if p.Location == tt.problemAt && strings.Contains(p.Message, tt.message) {
					return
				}
			}
			t.Errorf("problems %+v, want one at %q mentioning %q", api.Problems, tt.problemAt, tt.message)
		})
	}
}

// TestAnalyzeOpenAPIUnreadable checks the one-line errors for documents that
// cannot be parsed at all: each names the input and what is wrong.
func TestAnalyzeOpenAPIUnreadable(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"bad.yaml", "openapi: 3.0.0\ninfo: {title: t\npaths: {}\n", "line"},
		{"bad.json", `{"openapi": "3.0.0", "info": {`, "YAML or JSON"},
		{"list.yaml", "- a\n- b\n", "not an object"},
		{"other.yaml", "kind: Deployment\n", `neither an "openapi" nor a "swagger"`},
		{"v1.json", `{"swaggerVersion": "1.2", "swagger": "1.2"}`, `swagger version "1.2"`},
		{"v4.yaml", "openapi: 4.0.0\n", `openapi version "4.0.0"`},
		{"empty.yaml", "  \n", "empty"},
		{"missing.yaml", "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if tt.name != "missing.yaml" {
				if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := AnalyzeOpenAPI(context.Background(), p)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, p+": ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with the input and mentioning %q", msg, tt.want)
			}
		})
	}
}

// TestAnalyzeOpenAPIFromURL serves the petstore-separate example over HTTP,
// as a springfox /v2/api-docs would, so relative $refs are fetched from the
// same server; it also checks the size cap and that a remote document cannot
// reach local files.
func TestAnalyzeOpenAPIFromURL(t *testing.T) {
	files := http.FileServer(http.Dir(filepath.Join("testdata", "openapi")))
	mux := http.NewServeMux()
	mux.Handle("/", files)
	mux.HandleFunc("/huge.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"openapi":"3.0.0","x":"`))
		chunk := []byte(strings.Repeat("a", 1<<20))
		for i := 0; i < MaxOpenAPIBytes>>20+1; i++ {
			w.Write(chunk)
		}
	})
	mux.HandleFunc("/local-ref.json", func(w http.ResponseWriter, _ *http.Request) {
		abs, _ := filepath.Abs(filepath.Join("testdata", "openapi", "swagger2-petstore-separate", "common", "Error.json"))
		w.Write([]byte(`{"openapi":"3.0.0","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"x","content":{"application/json":{"schema":{"$ref":"file://` + abs + `"}}}}}}}}}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	api, err := AnalyzeOpenAPI(context.Background(), srv.URL+"/swagger2-petstore-separate/spec/swagger.json")
	if err != nil {
		t.Fatalf("AnalyzeOpenAPI over HTTP: %v", err)
	}
	if len(api.Operations) != 4 || api.Operations[0].Path != "/api/pets" {
		t.Errorf("operations = %+v", api.Operations)
	}

	api, err = AnalyzeOpenAPI(context.Background(), srv.URL+"/spring-petclinic-rest.openapi.yml")
	if err != nil || len(api.Operations) != 37 {
		t.Fatalf("YAML over HTTP: %v, %d operations", err, len(api.Operations))
	}

	if _, err := AnalyzeOpenAPI(context.Background(), srv.URL+"/huge.json"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge document: err = %v, want a size error", err)
	}
	if _, err := AnalyzeOpenAPI(context.Background(), srv.URL+"/nope.json"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing document: err = %v, want 404", err)
	}
	api, err = AnalyzeOpenAPI(context.Background(), srv.URL+"/local-ref.json")
	if err != nil {
		t.Fatalf("local-ref: %v", err)
	}
	if len(api.Problems) == 0 || !strings.Contains(api.Problems[0].Message, "may not refer to local files") {
		t.Errorf("a remote document's file $ref was followed: problems = %+v", api.Problems)
	}
}

func TestServerBasePath(t *testing.T) {
	vars := map[string]string{"basePath": "v2", "host": "example.com"}
	lookup := func(n string) string { return vars[n] }
	tests := map[string]string{
		"http://localhost:8080/api":  "/api",
		"http://localhost:8080/api/": "/api",
		"/v1":                        "/v1",
		"https://{host}/{basePath}":  "/v2",
		"http://localhost:8080":      "",
		"":                           "",
	}
	for in, want := range tests {
		if got := serverBasePath(in, lookup); got != want {
			t.Errorf("serverBasePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkAnalyzeOpenAPI measures a whole analysis of a real Spring Boot
// API (PetClinic, 37 operations): read, sniff, load, validate, list.
func BenchmarkAnalyzeOpenAPI(b *testing.B) {
	src := filepath.Join("testdata", "openapi", "spring-petclinic-rest.openapi.yml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnalyzeOpenAPI(context.Background(), src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKinLoadValidate is the baseline: kin-openapi's own load and
// validate of the same file, which is what a user scripting it would run.
func BenchmarkKinLoadValidate(b *testing.B) {
	src := filepath.Join("testdata", "openapi", "spring-petclinic-rest.openapi.yml")
	b.ReportAllocs()
	for b.Loop() {
		doc, err := openapi3.NewLoader().LoadFromFile(src)
		if err != nil {
			b.Fatal(err)
		}
		_ = doc.Validate(context.Background())
	}
}

// TestAnalyzeOpenAPIBrokenRefs breaks the multi-file Swagger 2 petstore in
// the ways people do (a renamed file, a renamed definition, a typo in a
// pointer) and checks each problem names the file, the place and what is
// missing, while the operations are still listed.
func TestAnalyzeOpenAPIBrokenRefs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("testdata", "openapi", "swagger2-petstore-separate")
	for _, f := range []string{"spec/swagger.json", "spec/Pet.json", "spec/NewPet.json", "spec/parameters.json", "common/Error.json"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte(`"parameters.json#/tagsParam"`), []byte(`"parameters.json#/tagParam"`))
		data = bytes.ReplaceAll(data, []byte(`"NewPet.json"`), []byte(`"NewPets.json"`))
		data = bytes.ReplaceAll(data, []byte(`"Pet.json"`), []byte(`"Pet.json#/properties/nope"`))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	api, err := AnalyzeOpenAPI(context.Background(), filepath.Join(dir, "spec", "swagger.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.Operations) != 4 {
		t.Errorf("%d operations, want the 4 the paths declare", len(api.Operations))
	}
	want := map[string]string{
		"paths./pets.get.parameters[0]":             `$ref "parameters.json#/tagParam": parameters.json has no "tagParam" at its top level`,
		"paths./pets.post.parameters[0].schema":     `$ref "NewPets.json": cannot read NewPets.json: no such file`,
		"paths./pets/{id}.get.responses.200.schema": `$ref "Pet.json#/properties/nope": Pet.json has no "nope" under /properties`,
	}
	got := map[string]string{}
	for _, p := range api.Problems {
		got[p.Location] = p.Message
		if p.Kind != ProblemBrokenRef {
			t.Errorf("problem %+v: kind %q, want %q", p, p.Kind, ProblemBrokenRef)
		}
	}
	for loc, msg := range want {
		if got[loc] != msg {
			t.Errorf("problem at %s = %q, want %q (all: %+v)", loc, got[loc], msg, api.Problems)
		}
	}
	svc := Service{Name: "petstore", API: api}
	Assess(&svc)
	if svc.Readiness.Level == LevelReady || !slices.Contains(findingIDs(&svc), "openapi-broken-ref") {
		t.Errorf("readiness %s with findings %v; a broken contract is not ready", svc.Readiness.Level, findingIDs(&svc))
	}
}

// TestAnalyzeOpenAPISwagger2Bundling checks that a Swagger 2 parameter and
// response kept in other files are read in their 2.0 shape, and that a
// schema referring to itself across files does not loop.
func TestAnalyzeOpenAPISwagger2Bundling(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"api.yaml": `swagger: "2.0"
info: {title: t, version: "1"}
paths:
  /nodes:
    get:
      parameters: [{$ref: "params.yaml#/depth"}]
      responses:
        "200": {$ref: "responses.yaml#/NodeList"}
`,
		"params.yaml":    "depth: {name: depth, in: query, type: integer}\n",
		"responses.yaml": "NodeList:\n  description: nodes\n  schema: {type: array, items: {$ref: \"node.yaml\"}}\n",
		"node.yaml":      "type: object\nproperties:\n  children: {type: array, items: {$ref: \"node.yaml\"}}\n  parent: {$ref: \"#\"}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	api, err := AnalyzeOpenAPI(context.Background(), filepath.Join(dir, "api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.Operations) != 1 || len(api.Problems) != 0 {
		t.Errorf("operations %+v, problems %+v; want one operation and no problem", api.Operations, api.Problems)
	}
}
