package discovery

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Bounds on what a gateway's HTTP server may send: a device description is
// a few kilobytes and a SOAP answer a few hundred bytes.
const (
	maxXMLBody   = 128 << 10
	maxXMLDepth  = 24
	maxXMLTokens = 20000
	maxHeader    = 16 << 10
)

// boundedTransport reads every response body whole, up to maxXMLBody, checks
// its XML nesting depth and token count, and hands the checked bytes on. So
// goupnp's SOAP decoder never sees an unbounded or deeply nested document.
type boundedTransport struct {
	base http.RoundTripper
}

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := readBounded(resp.Body, maxXMLBody)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	if err := checkXML(body); err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the transport under
// it (http.Client.CloseIdleConnections reaches it through this method).
func (t boundedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// readBounded reads r to the end, failing with ErrTooLarge past limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("body over %d bytes: %w", limit, ErrTooLarge)
	}
	return b, nil
}

// checkXML walks the tokens of b and fails when elements nest deeper than
// maxXMLDepth or there are more than maxXMLTokens tokens. Empty input passes
// (an HTTP error without a body). Syntax errors are left to the real decoder.
func checkXML(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	depth := 0
	for n := 0; ; n++ {
		if n > maxXMLTokens {
			return fmt.Errorf("more than %d XML tokens: %w", maxXMLTokens, ErrTooLarge)
		}
		tok, err := d.RawToken()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("XML: %v: %w", err, ErrMalformed)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxXMLDepth {
				return fmt.Errorf("XML depth over %d: %w", maxXMLDepth, ErrTooDeep)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// newHTTPClient returns the client every UPnP request goes through: no
// proxy, bounded headers and bodies, and timeout on the whole exchange. A
// caller's client keeps its transport (wrapped) and gets a timeout if it
// had none.
func newHTTPClient(base *http.Client, dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	rt := c.Transport
	if rt == nil {
		if dial == nil {
			dial = (&net.Dialer{Timeout: timeout}).DialContext
		}
		rt = &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			MaxResponseHeaderBytes: maxHeader,
			ResponseHeaderTimeout:  timeout,
			IdleConnTimeout:        30 * time.Second,
			MaxIdleConnsPerHost:    2,
			DisableCompression:     true,
		}
	}
	c.Transport = boundedTransport{base: rt}
	if c.Timeout == 0 {
		c.Timeout = timeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}
