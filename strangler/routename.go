package strangler

import (
	"fmt"
	"strings"
)

// Methods a route may name.
var routeMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "TRACE": true, "CONNECT": true,
}

// SplitRouteName splits "METHOD /path/template" into its two halves.
func SplitRouteName(name string) (method, path string, ok bool) {
	method, path, ok = strings.Cut(name, " ")
	return method, path, ok
}

// ValidateRouteName checks "METHOD /path/template": an upper-case HTTP
// method, one space, and an absolute path whose {params} are well formed.
func ValidateRouteName(name string) error {
	method, path, ok := SplitRouteName(name)
	if !ok {
		return fmt.Errorf("route %q: write it as \"METHOD /path\", e.g. \"GET /api/order/{id}\"", name)
	}
	if !routeMethods[method] {
		return fmt.Errorf("route %q: %q is not an HTTP method (use upper case, e.g. GET)", name, method)
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("route %q: the path must start with /", name)
	}
	if strings.ContainsAny(path, " ?#\t\r\n") {
		return fmt.Errorf("route %q: the path template must not contain spaces, ? or #", name)
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if _, err := parseSegment(seg); err != nil {
			return fmt.Errorf("route %q: %w", name, err)
		}
	}
	return nil
}
