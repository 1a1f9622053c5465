package simkit

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// WriteRaw answers code with body as contentType, with its Content-Length.
func WriteRaw(w http.ResponseWriter, contentType string, code int, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// WriteJSON answers code with v encoded as JSON (as contentType), or 500 when v does not
// encode.
func WriteJSON(w http.ResponseWriter, contentType string, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	WriteRaw(w, contentType, code, b)
}

// ResetConn drops the connection without an answer (RST instead of FIN): the client sees a
// reset or EOF. It reports false when w cannot be taken over; the caller then answers
// instead.
func ResetConn(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return true
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return true
}

// Truncate answers 200 with a Content-Length for all of body (as contentType) but sends only
// its first half, then closes the connection. It reports false when w cannot be taken over;
// the caller then answers instead.
func Truncate(w http.ResponseWriter, contentType string, body []byte) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return true
	}
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", contentType, len(body))
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
	_ = conn.Close()
	return true
}
