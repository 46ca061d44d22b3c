package shadow

import "testing"

func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		d    Difference
		want string
	}{
		{Difference{Path: "@body", Type: DiffBody}, "body differs"},
		{Difference{Path: "@status", Type: DiffStatus, Legacy: "200", Candidate: "500"}, "status differs"},
		{Difference{Path: "@header/content-type", Type: DiffContentType}, "header Content-Type differs"},
		{Difference{Path: "@header/x-request-id", Type: DiffMissing}, "header X-Request-Id missing"},
		{Difference{Path: "", Type: DiffSize, Legacy: "2", Candidate: "3"}, "array has extra items at (root)"},
		{Difference{Path: "/items", Type: DiffSize, Legacy: "10", Candidate: "9"}, "array is missing items at /items"},
		{Difference{Path: "/3", Type: DiffExtra}, "array has extra items at (root)"},
		{Difference{Path: "/0/sku", Type: DiffExtra}, "extra field at /0/sku"},
		{Difference{Path: "/0/skuCode", Type: DiffMissing}, "field missing at /0/skuCode"},
		{Difference{Path: "/0/price", Type: DiffValue}, "value differs at /0/price"},
		{Difference{Path: "", Type: DiffType}, "JSON type differs at (root)"},
		{Difference{Path: "@line/4", Type: DiffLine}, "text line 4 differs"},
	} {
		if got := Describe(tt.d); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	for sig, want := range map[string]string{
		" size":                             "array length differs at (root)",
		"/* extra":                          "array has extra items at (root)",
		"@body body":                        "body differs",
		"@header/content-type content-type": "header Content-Type differs",
		"@text line":                        "text line differs",
		"/*/price value":                    "value differs at /*/price",
		"@call/POST /api/inventory/reserve/{sku} side-effect": "side effect POST /api/inventory/reserve/{sku} differs",
	} {
		if got := DescribeSignature(sig); got != want {
			t.Errorf("DescribeSignature(%q) = %q, want %q", sig, got, want)
		}
	}
}
