package shadow

import (
	"encoding/json"
	"regexp"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func compileRE(s string) (*regexp.Regexp, error) { return regexp.Compile(s) }
