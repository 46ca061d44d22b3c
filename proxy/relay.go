package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/strangler"
	"golang.org/x/net/http/httpguts"
)

// The relay serves most of a legacy-mode route's traffic from the raw
// bytes: a GET or HEAD without a body whose answer comes from an http://
// upstream. The client's head goes to the upstream as it came, its Host
// line replaced and the forwarding fields written in; a plain answer (a
// Content-Length, no transfer coding, nothing to sniff) comes back field by
// field. No http.Request, http.Response or header map is made for either:
// those were a third of the proxy's CPU per request, and the CPU per
// request is what its throughput is on a machine it shares with its
// upstreams (bench/proxy-vs-nginx.sh).
//
// What the relay does is what forward does for the same request (held to
// it by TestRelayMatchesForward), and it only takes what it can do so:
// any other request is declined before a byte is sent and takes the
// general path, and an answer it does not cover is read and written by
// forward's own code (relayTail).

// relayOutcome is what became of a head offered to the relay.
type relayOutcome int

const (
	relayDeclined relayOutcome = iota // nothing sent: serve it as any request
	relayKeep                         // answered; the connection carries on
	relayClose                        // answered, or broken mid-answer: close the connection
	relayTail                         // sent; the tail the relay returns writes the answer
)

// headRelay is a handler that can serve some requests from their raw head
// (Proxy); Server offers it every head it reads itself, first.
type headRelay interface {
	relay(c *serverConn, head messageHead) (relayOutcome, http.HandlerFunc)
}

// relayRequest is a request head the relay covers.
type relayRequest struct {
	method, target, path, host string
	// fields are the runs of the head's field lines (each line with its
	// CRLF) that go upstream as they came: all but Host and the
	// forwarding fields, which the relay writes itself.
	fields  [maxRelayRuns]string
	nfields int
	// The forwarding the proxies in front did: priorFor is their
	// X-Forwarded-For chain (the lines' values joined, when hasFor), and
	// priorForwarded the first Forwarded value, which forward extends.
	priorFor       string
	hasFor         bool
	priorForwarded string
	requestID      bool // it carries X-Request-Id, which may name a shadowed request
}

// maxRelayRuns bounds the runs of field lines a relayed head is cut into
// (Host and up to five forwarding lines taken out); a head cut finer is
// left to the general path.
const maxRelayRuns = 7

// parseRelayable reads a head the relay covers: GET or HEAD, HTTP/1.1, a
// path made only of bytes net/url leaves as they are, a query forward
// would not re-encode, one valid Host, field names in canonical form with
// valid values, and none of the fields that ask for more than a plain
// exchange (a body, a connection option, hop-by-hop fields, an empty
// User-Agent, Pragma). The forwarding fields of proxies in front are
// taken out of the lines copied and extended as forward extends them.
func parseRelayable(head []byte) (relayRequest, bool) {
	var r relayRequest
	s := string(head) // every string of the request points into this one
	eol := strings.Index(s, "\r\n")
	if eol < 0 || !strings.HasSuffix(s, "\r\n\r\n") {
		return r, false
	}
	method, rest, _ := strings.Cut(s[:eol], " ")
	if method != http.MethodGet && method != http.MethodHead {
		return r, false
	}
	target, version, ok := strings.Cut(rest, " ")
	if !ok || version != "HTTP/1.1" || target == "" || target[0] != '/' {
		return r, false
	}
	path, query, _ := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte(path[i]) {
			return r, false
		}
	}
	for i := 0; i < len(query); i++ {
		if b := query[i]; b <= ' ' || b >= 0x7f || b == '#' {
			return r, false
		}
	}
	if cleanQueryParams(query) != query {
		return r, false
	}
	r.method, r.target, r.path = method, target, path

	// The field lines, each with its CRLF (the head's last two bytes are
	// the empty line).
	fields := s[eol+2 : len(s)-2]
	hosts, run, forwardedSeen := 0, 0, false
	// cut ends the current run of copied lines before the line at..end.
	cut := func(at, end int) bool {
		if r.nfields == maxRelayRuns-1 {
			return false
		}
		r.fields[r.nfields] = fields[run:at]
		r.nfields++
		run = end + 2
		return true
	}
	for at := 0; at < len(fields); {
		end := at + strings.Index(fields[at:], "\r\n")
		name, value, ok := strings.Cut(fields[at:end], ":")
		if canonical, valid := canonicalName(name); !ok || !valid || canonical != name {
			return r, false // also a folded line, which starts with a space
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return r, false
		}
		written := true // by the relay itself, not copied
		switch name {
		case "Host":
			hosts++
			r.host = value
		case "X-Forwarded-For":
			if r.hasFor {
				r.priorFor += ", " + value
			} else {
				r.priorFor, r.hasFor = value, true
			}
		case "Forwarded":
			if !forwardedSeen {
				r.priorForwarded, forwardedSeen = value, true
			}
		case "X-Forwarded-Host", "X-Forwarded-Proto":
		default:
			written = false
		}
		if written && !cut(at, end) {
			return r, false
		}
		switch name {
		case "User-Agent":
			if value == "" {
				return r, false // no User-Agent at all upstream, which a copy cannot say
			}
		case headerRequestID:
			r.requestID = true
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Connection", "Keep-Alive",
			"Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate", "Te", "Trailer", "Pragma":
			return r, false
		}
		at = end + 2
	}
	if hosts != 1 || !httpguts.ValidHostHeader(r.host) {
		return r, false
	}
	r.fields[r.nfields] = fields[run:]
	r.nfields++
	return r, true
}

// plainPathByte reports whether net/url keeps b in a path as it is, so the
// path matched and the one sent upstream are the client's bytes.
func plainPathByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-_.~$&+,/:;=@", b) >= 0
}

// relay serves the request in head when it is one the relay covers, on a
// route whose answer is legacy's (or the default upstream's), from an
// http:// upstream. A shadowed read is one when the mirror has shed its
// copy: under overload most are, and serving them as legacy ones keeps
// the mirror's shedding from costing the clients.
func (p *Proxy) relay(c *serverConn, head messageHead) (relayOutcome, http.HandlerFunc) {
	if head.bad || head.n == 0 || c.tmpl.TLS != nil {
		return relayDeclined, nil
	}
	t := p.table.Load()
	if t == nil {
		return relayDeclined, nil
	}
	rq, ok := parseRelayable(head.raw[:head.n])
	if !ok || rq.requestID && p.egress.n.Load() > 0 {
		return relayDeclined, nil
	}
	var e *entry
	up := t.def
	shadowed := false
	if i := t.matcher.Match(rq.method, rq.path); i >= 0 {
		e = t.routes[i]
		if e.candidate != nil {
			switch e.live.State().Mode {
			case strangler.ModeLegacy:
			case strangler.ModeShadow:
				shadowed = true
			default:
				return relayDeclined, nil
			}
		}
		up = e.legacy
	}
	if up == nil || up.relayHost == "" {
		return relayDeclined, nil
	}
	kat := up.rt.(*keepAliveTransport)
	ip, node, ok := c.forwardedFor()
	if !ok {
		return relayDeclined, nil
	}
	// Asked last, as a shed copy is counted as dropped: the general path
	// must not see this request.
	if shadowed && !p.shedsCopy(e) {
		return relayDeclined, nil
	}

	if p.traffic != nil {
		p.traffic.Begin()
	}
	start := time.Now()
	kc, rh, err := kat.relayExchange(func(bw *bufio.Writer) {
		bw.WriteString(rq.method)
		bw.WriteByte(' ')
		bw.WriteString(rq.target)
		bw.WriteString(" HTTP/1.1\r\nHost: ")
		bw.WriteString(up.relayHost)
		bw.WriteString("\r\n")
		for _, f := range rq.fields[:rq.nfields] {
			bw.WriteString(f)
		}
		bw.WriteString("X-Forwarded-For: ")
		if rq.hasFor {
			bw.WriteString(rq.priorFor)
			bw.WriteString(", ")
		}
		bw.WriteString(ip)
		bw.WriteString("\r\nX-Forwarded-Host: ")
		bw.WriteString(rq.host)
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\nForwarded: ")
		if rq.priorForwarded != "" {
			bw.WriteString(rq.priorForwarded)
			bw.WriteString(", ")
		}
		bw.WriteString("for=")
		bw.WriteString(node)
		bw.WriteString(";host=")
		bw.WriteString(c.quotedHost(rq.host))
		bw.WriteString(";proto=http\r\n\r\n")
	})
	var ans relayAnswer
	if err == nil {
		ans, ok = parseRelayAnswer(rh.raw[:rh.n], rq.method == http.MethodHead)
	}
	if err != nil || !ok {
		// The general path writes this answer, or the error, from here.
		return relayTail, func(w http.ResponseWriter, r *http.Request) {
			if p.traffic != nil {
				defer p.traffic.End()
			}
			rec := getRecorder(w)
			outreq := up.outRequest(r)
			var res *http.Response
			if err == nil {
				res, err = kat.answer(kc, outreq, nil, neverStopped)
			}
			if err != nil {
				up.rp.ErrorHandler(rec, outreq, err)
			} else {
				up.answer(rec, outreq, res)
			}
			p.served(r, t, e, up, rec, time.Since(start))
		}
	}
	if kat.headerTimeout > 0 {
		kc.conn.SetReadDeadline(time.Time{})
	}
	outcome := c.relayAnswer(kc, rh, &ans)
	if ans.answered && ans.reusable {
		kat.put(kc)
	} else {
		kc.conn.Close()
	}
	if p.traffic != nil {
		p.traffic.End()
	}
	if !ans.answered {
		// The upstream broke off the body, or the client left: the
		// client's connection is aborted, as under forward, and nothing
		// is counted.
		return relayClose, nil
	}
	p.account(t, e, up, rq.method, rq.path, c.tmpl.RemoteAddr, ans.status, time.Since(start), nil)
	return outcome, nil
}

// forwardedFor is the client's address as X-Forwarded-For and Forwarded's
// for= give it, worked out once per connection; false when the address has
// no port, where forward leaves X-Forwarded-For out.
func (c *serverConn) forwardedFor() (ip, node string, ok bool) {
	if c.relayIP == "" {
		host, _, err := net.SplitHostPort(c.tmpl.RemoteAddr)
		if err != nil || host == "" {
			return "", "", false
		}
		c.relayIP, c.relayNode = host, forwardedNode(host)
	}
	return c.relayIP, c.relayNode, true
}

// quotedHost is quoteForwarded(host), kept for the next request on the
// connection, which almost always names the same host.
func (c *serverConn) quotedHost(host string) string {
	if host != c.relayHost {
		c.relayHost, c.relayQuoted = host, quoteForwarded(host)
	}
	return c.relayQuoted
}

// relayAnswer is an upstream answer the relay copies itself.
type relayAnswer struct {
	status int
	length int64  // the body's, 0 for a bodiless answer
	fields []byte // the field lines, each with its CRLF
	// drop are the spans of fields (Connection, Keep-Alive) left out.
	drop     [2][2]int
	dropped  int
	hasDate  bool // else the relay writes one, as the server would
	reusable bool // the upstream keeps the connection
	answered bool // the whole answer reached the client's buffer
}

// parseRelayAnswer reads an answer head the relay copies as it is: HTTP/1.1,
// a final status other than 204 and 304, a Content-Length of digits (or
// none, to a HEAD), a Content-Type when there is a body, no transfer coding,
// trailers, upgrade or hop-by-hop field but Connection (keep-alive or close)
// and Keep-Alive, which are left out, no Pragma (forward would add
// Cache-Control), field names in canonical form with valid values.
func parseRelayAnswer(head []byte, toHead bool) (relayAnswer, bool) {
	var a relayAnswer
	s := string(head)
	eol := strings.Index(s, "\r\n")
	if eol < 12 || s[:9] != "HTTP/1.1 " || eol > 12 && s[12] != ' ' || !strings.HasSuffix(s, "\r\n\r\n") {
		return a, false
	}
	for i := 9; i < 12; i++ {
		if s[i] < '0' || s[i] > '9' {
			return a, false
		}
		a.status = a.status*10 + int(s[i]-'0')
	}
	if a.status < 200 || a.status == http.StatusNoContent || a.status == http.StatusNotModified {
		return a, false
	}
	a.reusable = true
	hasLength, hasType := false, false
	fields := s[eol+2 : len(s)-2]
	for at := 0; at < len(fields); {
		end := at + strings.Index(fields[at:], "\r\n")
		next := end + 2
		name, value, ok := strings.Cut(fields[at:end], ":")
		if canonical, valid := canonicalName(name); !ok || !valid || canonical != name {
			return a, false
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return a, false
		}
		switch name {
		case "Content-Length":
			n, ok := contentLength([]string{value})
			if !ok || hasLength {
				return a, false
			}
			a.length, hasLength = n, true
		case "Content-Type":
			hasType = true
		case "Date":
			a.hasDate = true
		case "Connection":
			for tok := range strings.SplitSeq(value, ",") {
				switch tok = textproto.TrimString(tok); {
				case strings.EqualFold(tok, "close"):
					a.reusable = false
				case strings.EqualFold(tok, "keep-alive"):
				default:
					return a, false // it names a field to drop
				}
			}
			fallthrough
		case "Keep-Alive":
			if a.dropped == len(a.drop) {
				return a, false
			}
			a.drop[a.dropped] = [2]int{at, next}
			a.dropped++
		case "Transfer-Encoding", "Trailer", "Upgrade", "Te", "Proxy-Connection", "Proxy-Authenticate",
			"Proxy-Authorization", "Pragma":
			return a, false
		}
		at = next
	}
	switch {
	case toHead:
		a.length = 0 // the length is the GET's; no body follows
	case !hasLength || a.length > 0 && !hasType:
		return a, false // the body ends with the connection, or its type is to be sniffed
	}
	a.fields = head[eol+2 : len(head)-2]
	return a, true
}

// relayAnswer writes the answer whose head is rh to the client: the status
// line the server writes for its code, the upstream's fields but the
// dropped ones, a Date if it had none, then the body from kc.
func (c *serverConn) relayAnswer(kc *keepAliveConn, rh messageHead, a *relayAnswer) relayOutcome {
	bw := c.bw
	writeStatusLine(bw, a.status)
	from := 0
	for _, d := range a.drop[:a.dropped] {
		bw.Write(a.fields[from:d[0]])
		from = d[1]
	}
	bw.Write(a.fields[from:])
	if !a.hasDate {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	keep := !c.s.closing.Load()
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	kc.br.Discard(rh.n) // copied: the buffer now starts with the body
	for left := a.length; left > 0; {
		if kc.br.Buffered() == 0 {
			if _, err := kc.br.Peek(1); err != nil {
				return relayClose
			}
		}
		chunk, _ := kc.br.Peek(int(min(left, int64(kc.br.Buffered()))))
		if _, err := bw.Write(chunk); err != nil {
			return relayClose
		}
		kc.br.Discard(len(chunk))
		left -= int64(len(chunk))
	}
	a.answered = true
	if err := bw.Flush(); err != nil || !keep {
		return relayClose
	}
	return relayKeep
}

// relayExchange sends the request write writes on a pooled connection and
// peeks at the answer's head, which it leaves in the connection's buffer.
// A pooled connection the upstream had closed is replaced once, as
// RoundTrip does for a request that can be replayed; an error after that
// is the caller's to answer, on kc when it is not nil.
func (t *keepAliveTransport) relayExchange(write func(*bufio.Writer)) (*keepAliveConn, messageHead, error) {
	for attempt := 0; ; attempt++ {
		kc, reused, err := t.conn(context.Background(), true)
		if err != nil {
			return nil, messageHead{}, err
		}
		write(kc.bw)
		err = kc.bw.Flush()
		var rh messageHead
		if err == nil {
			if t.headerTimeout > 0 {
				kc.conn.SetReadDeadline(time.Now().Add(t.headerTimeout))
			}
			rh, err = peekHead(kc.br, nil)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errStaleConn
			}
		}
		if err == nil {
			return kc, rh, nil // the header timeout still set: the caller reads on
		}
		kc.conn.Close()
		if !reused || attempt > 0 || !connGone(err) {
			return nil, messageHead{}, err
		}
	}
}
