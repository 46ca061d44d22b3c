package analyze

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzAnalyzeOpenAPI feeds arbitrary bytes to the document analyzer. It must
// never panic, and every error must be one line naming the input.
func FuzzAnalyzeOpenAPI(f *testing.F) {
	for _, name := range []string{
		"oas30-petstore-expanded.yaml", "oas31-webhook-example.yaml",
		"swagger2-petstore.json", "swagger2-uber.json",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "openapi", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"swagger":"2.0","info":{"title":"t","version":"1"},"basePath":"/b","paths":{"/x":{"get":{"responses":{"200":{"description":"ok"}}}}}}`))
	f.Add([]byte("openapi: 3.1.0\npaths:\n  /a: {$ref: '#/paths/~1a'}\n"))
	f.Add([]byte("openapi: 3.0.0\ncomponents: {schemas: {A: {$ref: '#/components/schemas/A'}}}\n"))
	f.Add([]byte("openapi: 3.0.0\nservers: [{url: '{x}://{'}]\npaths: {a: {get: {}}}\n"))
	f.Add([]byte(`{"openapi":"3.0.0","paths":{"/a":{"get":{"parameters":[{"$ref":"other.json#/p"}]}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		api, err := analyzeOpenAPIData(context.Background(), "fuzz.yaml", data, nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error is not one line naming the input: %q", err)
			}
			return
		}
		if api.Operations == nil {
			t.Fatal("nil operations")
		}
	})
}
