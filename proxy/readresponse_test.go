package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// FuzzReadResponse holds the answers readResponse reads itself to what
// http.ReadResponse makes of the same bytes, body included, and checks
// that what it leaves to net/http it leaves unread.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 201 \r\nContent-Length: 3\r\nPragma: no-cache\r\nX-A: 1\r\nx-a: 2\r\n\r\nabcdef",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 500\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		req := &http.Request{Method: http.MethodGet}
		if head {
			req.Method = http.MethodHead
		}
		br := bufio.NewReaderSize(bytes.NewReader(raw), 4096)
		got, gotErr := readResponse(br, req)
		want, wantErr := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), req)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, net/http's %v", raw, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		gotBody, gotReadErr := io.ReadAll(got.Body)
		wantBody, wantReadErr := io.ReadAll(want.Body)
		if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
			got.ContentLength != want.ContentLength || got.Close != want.Close ||
			!reflect.DeepEqual(got.Header, want.Header) || !bytes.Equal(gotBody, wantBody) ||
			(gotReadErr != nil) != (wantReadErr != nil) {
			t.Fatalf("%q:\n got %q %d %s len=%d close=%v %v body=%q (%v)\nwant %q %d %s len=%d close=%v %v body=%q (%v)", raw,
				got.Status, got.StatusCode, got.Proto, got.ContentLength, got.Close, got.Header, gotBody, gotReadErr,
				want.Status, want.StatusCode, want.Proto, want.ContentLength, want.Close, want.Header, wantBody, wantReadErr)
		}
	})
}
