package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/strangler-fig/migrate/internal/logs"
)

// WithMatchedRoute returns a context carrying the route the proxy matched
// for the request, e.g. "POST /api/order" or "/api/order/{id}". RoundTrip
// passes its path template (the route without its method) to the guest as
// X_MATCHED_ROUTE and names the route in log records. Without it the guest
// sees "/...", the value Spin gives a component mounted at the root. It is
// logs.WithRoute: shadow copies carry the same route.
func WithMatchedRoute(ctx context.Context, route string) context.Context {
	return logs.WithRoute(ctx, route)
}

// matchedRoute returns the route stored by WithMatchedRoute, or "".
func matchedRoute(ctx context.Context) string { return logs.Route(ctx) }

// routeTemplate strips a leading HTTP method from a route name.
func routeTemplate(route string) string {
	if route == "" {
		return "/..."
	}
	if i := strings.IndexByte(route, ' '); i > 0 && !strings.HasPrefix(route, "/") {
		return strings.TrimSpace(route[i+1:])
	}
	return route
}

// cgiEnv builds the guest's whole environment from the request; nothing of
// the host's environment is passed. contentLength is the number of bytes
// the guest will find on stdin.
func cgiEnv(r *http.Request, contentLength int64) []string {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	scheme := r.URL.Scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	serverName, serverPort := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		serverName, serverPort = h, p
	}
	if serverPort == "" {
		serverPort = "80"
		if scheme == "https" {
			serverPort = "443"
		}
	}
	remote := r.RemoteAddr
	if h, _, err := net.SplitHostPort(remote); err == nil {
		remote = h
	}
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	fullURL := scheme + "://" + host + r.URL.RequestURI()

	env := make([]string, 0, 20+len(r.Header))
	env = append(env,
		"GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_SOFTWARE=migrate",
		"SERVER_PROTOCOL="+proto,
		"SERVER_NAME="+serverName,
		"SERVER_PORT="+serverPort,
		"REQUEST_METHOD="+r.Method,
		"SCRIPT_NAME=",
		"PATH_INFO="+r.URL.Path,
		"PATH_TRANSLATED="+r.URL.Path,
		"X_RAW_PATH_INFO="+r.URL.EscapedPath(),
		"QUERY_STRING="+r.URL.RawQuery,
		"X_FULL_URL="+fullURL,
		"X_MATCHED_ROUTE="+routeTemplate(matchedRoute(r.Context())),
		"REMOTE_ADDR="+remote,
		"REMOTE_HOST="+remote,
		"CONTENT_LENGTH="+strconv.FormatInt(contentLength, 10),
		"CONTENT_TYPE="+r.Header.Get("Content-Type"),
	)
	if host != "" {
		env = append(env, "HTTP_HOST="+host)
	}
	for k, vs := range r.Header {
		name := cgiHeaderName(k)
		switch name {
		case "CONTENT_TYPE", "CONTENT_LENGTH", "HOST":
			continue // already passed as their CGI variables
		case "PROXY":
			continue // httpoxy: a guest HTTP client must not pick it up as HTTP_PROXY
		}
		sep := ", "
		if name == "COOKIE" {
			sep = "; "
		}
		env = append(env, "HTTP_"+name+"="+strings.Join(vs, sep))
	}
	return env
}

// cgiHeaderName maps "X-Request-Id" to "X_REQUEST_ID".
func cgiHeaderName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-':
			return '_'
		case r >= 'a' && r <= 'z':
			return r - ('a' - 'A')
		}
		return r
	}, k)
}

// maxHeaderBlock bounds the CGI header block a guest may write.
const maxHeaderBlock = 64 << 10

// hopHeaders are connection-level fields a guest cannot meaningfully set;
// Content-Length is recomputed from the body.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Proxy-Connection": true, "Content-Length": true,
}

// parseCGIResponse turns a guest's stdout into a status, header and body.
//
// The header block is "Name: value" lines ended by an empty line; lines end
// in "\n" or "\r\n". "Status: 404 Not Found" sets the status (the reason
// text is ignored); "Location" without "Status" means 302; otherwise the
// status is 200. A body needs a Content-Type (RFC 3875 §6.3.1); a
// header-only response such as "Status: 201\n\n" needs none.
func parseCGIResponse(out []byte) (int, http.Header, []byte, error) {
	if len(out) == 0 {
		return 0, nil, nil, errors.New("the guest wrote nothing to stdout; a WAGI module must print a header block, e.g. \"Content-Type: text/plain\\n\\n\"")
	}
	header := http.Header{}
	status := 0
	rest := out
	for n := 0; ; n++ {
		if len(out)-len(rest) > maxHeaderBlock {
			return 0, nil, nil, fmt.Errorf("header block longer than %d bytes", maxHeaderBlock)
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return 0, nil, nil, fmt.Errorf("no blank line ends the header block (stdout starts %q); print the headers, an empty line, then the body", preview(out))
		}
		line := rest[:i]
		rest = rest[i+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if n == 0 {
				return 0, nil, nil, errors.New("stdout starts with a blank line: the header block is empty; print at least Content-Type or Status")
			}
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, nil, nil, fmt.Errorf("header line %q has no \"Name: value\" form", preview(line))
		}
		name := string(line[:colon])
		if !validHeaderName(name) {
			return 0, nil, nil, fmt.Errorf("header name %q is not a valid HTTP field name", preview(line[:colon]))
		}
		value := strings.TrimSpace(string(line[colon+1:]))
		if strings.ContainsAny(value, "\x00\r") {
			return 0, nil, nil, fmt.Errorf("header %s has a control character in its value", name)
		}
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		if canonical == "Status" {
			code, err := parseStatus(value)
			if err != nil {
				return 0, nil, nil, err
			}
			status = code
			continue
		}
		if hopHeaders[canonical] {
			continue
		}
		header[canonical] = append(header[canonical], value)
	}
	if status == 0 {
		status = http.StatusOK
		if header.Get("Location") != "" {
			status = http.StatusFound
		}
	}
	if len(rest) > 0 && header.Get("Content-Type") == "" && header.Get("Location") == "" {
		return 0, nil, nil, errors.New("a body was written without a Content-Type header")
	}
	return status, header, rest, nil
}

// parseStatus reads "404" or "404 Not Found".
func parseStatus(v string) (int, error) {
	codeText, _, _ := strings.Cut(v, " ")
	code, err := strconv.Atoi(codeText)
	if err != nil || len(codeText) != 3 || code < 100 || code > 599 {
		return 0, fmt.Errorf("header Status: %q is not a three-digit HTTP status between 100 and 599", v)
	}
	return code, nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return s != ""
}

// preview shortens guest output quoted in an error message.
func preview(b []byte) string {
	const n = 60
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
