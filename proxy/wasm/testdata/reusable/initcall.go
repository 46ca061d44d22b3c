//go:build initcall

package main

import "unsafe"

//go:wasmimport wasi_experimental_http req
func httpReq(url *byte, urlLen uint32, method *byte, methodLen uint32, headers *byte, headersLen uint32, body *byte, bodyLen uint32, status *uint16, handle *uint32) uint32

// Built with -tags initcall, _initialize makes an outbound call, whose
// answer no request asked for.
func init() {
	url, method := "http://inventory-service/api/inventory", "GET"
	var status uint16
	var handle uint32
	httpReq(unsafe.StringData(url), uint32(len(url)), unsafe.StringData(method), uint32(len(method)), nil, 0, nil, 0, &status, &handle)
}
