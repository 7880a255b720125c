// Package vssclient is a client of the VSS protocol as LDK's vss-client
// speaks it: the four calls, protobuf bodies, the protocol version check,
// and ErrorResponse bodies turned into typed errors. The tests, the load
// generator and the drills use it.
package vssclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"google.golang.org/protobuf/proto"

	"ldkbackup/internal/vssauth"
	"ldkbackup/internal/vsspb"
)

// ProtocolVersion is the VSS protocol version the client speaks; a response
// without it is refused, as vss-client refuses it.
const (
	ProtocolVersionHeader = "vss-protocol-version"
	ProtocolVersion       = "0"
)

// maxResponse bounds a response body read whole, as vss-client's 1 GiB.
const maxResponse = 1 << 30

// HeaderProvider gives the headers of each request (its authorization),
// given the request's body.
type HeaderProvider interface {
	Headers(ctx context.Context, body []byte) (http.Header, error)
}

// HeaderFunc adapts a function to HeaderProvider.
type HeaderFunc func(ctx context.Context, body []byte) (http.Header, error)

func (f HeaderFunc) Headers(ctx context.Context, body []byte) (http.Header, error) {
	return f(ctx, body)
}

// Fixed sends the same headers with every request.
func Fixed(h http.Header) HeaderProvider {
	return HeaderFunc(func(context.Context, []byte) (http.Header, error) { return h.Clone(), nil })
}

// Bearer sends "Authorization: Bearer token" (a JWT from an app's own login
// service).
func Bearer(token string) HeaderProvider {
	return Fixed(http.Header{"Authorization": {"Bearer " + token}})
}

// Signature signs each request's Authorization header with key at now(), as
// ldk-node's default (vss-client's SigsAuthProvider) does: a fresh header
// for every request.
func Signature(key *btcec.PrivateKey, now func() time.Time) HeaderProvider {
	return HeaderFunc(func(context.Context, []byte) (http.Header, error) {
		return http.Header{"Authorization": {vssauth.SignatureHeader(key, now())}}, nil
	})
}

// Client calls one VSS server at one base URL (.../vss or .../t/SLUG/vss).
type Client struct {
	base    string
	http    *http.Client
	headers HeaderProvider
}

// New returns a client of the server at base; hc nil is
// http.DefaultClient, headers nil sends none.
func New(base string, hc *http.Client, headers HeaderProvider) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	if headers == nil {
		headers = Fixed(nil)
	}
	return &Client{base: strings.TrimSuffix(base, "/"), http: hc, headers: headers}
}

// Error is a refusal the server answered with an ErrorResponse.
type Error struct {
	Status  int
	Code    vsspb.ErrorCode
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("vss: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Is matches the sentinels below by code, so errors.Is(err, ErrConflict)
// holds for every conflict.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == 0 && t.Message == "" && t.Code == e.Code
}

// Sentinels of each code, for errors.Is.
var (
	ErrNoSuchKey      = &Error{Code: vsspb.ErrorCode_NO_SUCH_KEY_EXCEPTION}
	ErrConflict       = &Error{Code: vsspb.ErrorCode_CONFLICT_EXCEPTION}
	ErrInvalidRequest = &Error{Code: vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION}
	ErrAuth           = &Error{Code: vsspb.ErrorCode_AUTH_EXCEPTION}
	ErrInternal       = &Error{Code: vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION}
)

// ErrProtocolVersion is a response without the protocol version this
// client speaks.
var ErrProtocolVersion = errors.New("vss: the server does not speak VSS protocol version " + ProtocolVersion)

// ErrUndecodable is an error response whose body is no ErrorResponse.
var ErrUndecodable = errors.New("vss: error response is not an ErrorResponse")

// GetObject reads one key. A response without a value is a protocol
// violation, as vss-client treats it.
func (c *Client) GetObject(ctx context.Context, req *vsspb.GetObjectRequest) (*vsspb.GetObjectResponse, error) {
	var resp vsspb.GetObjectResponse
	if err := c.call(ctx, "/getObject", req, &resp); err != nil {
		return nil, err
	}
	if resp.Value == nil {
		return nil, errors.New("vss: GetObjectResponse without a value")
	}
	return &resp, nil
}

// PutObjects writes and deletes the request's items together.
func (c *Client) PutObjects(ctx context.Context, req *vsspb.PutObjectRequest) error {
	return c.call(ctx, "/putObjects", req, &vsspb.PutObjectResponse{})
}

// DeleteObject deletes one key; a key already gone is no error.
func (c *Client) DeleteObject(ctx context.Context, req *vsspb.DeleteObjectRequest) error {
	return c.call(ctx, "/deleteObject", req, &vsspb.DeleteObjectResponse{})
}

// ListKeyVersions reads one page of a store's keys.
func (c *Client) ListKeyVersions(ctx context.Context, req *vsspb.ListKeyVersionsRequest) (*vsspb.ListKeyVersionsResponse, error) {
	var resp vsspb.ListKeyVersionsResponse
	if err := c.call(ctx, "/listKeyVersions", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ListAll reads every page of a store's keys with prefix and returns them
// with the first page's global version.
func (c *Client) ListAll(ctx context.Context, storeID, prefix string, pageSize *int32) ([]*vsspb.KeyValue, int64, error) {
	var all []*vsspb.KeyValue
	var global int64
	var token *string
	for {
		req := &vsspb.ListKeyVersionsRequest{StoreId: storeID, PageSize: pageSize, PageToken: token}
		if prefix != "" {
			req.KeyPrefix = &prefix
		}
		page, err := c.ListKeyVersions(ctx, req)
		if err != nil {
			return nil, 0, err
		}
		if token == nil {
			global = page.GetGlobalVersion()
		}
		all = append(all, page.KeyVersions...)
		if page.GetNextPageToken() == "" {
			return all, global, nil
		}
		next := page.GetNextPageToken()
		token = &next
	}
}

// call posts req to path and decodes the answer into resp, or the refusal
// into an *Error.
func (c *Client) call(ctx context.Context, path string, req, resp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	headers, err := c.headers.Headers(ctx, body)
	if err != nil {
		return fmt.Errorf("vss: headers: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range headers {
		hreq.Header[k] = vs
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return err
	}
	defer hresp.Body.Close()
	if hresp.Header.Get(ProtocolVersionHeader) != ProtocolVersion {
		return fmt.Errorf("%w (status %d, header %q)", ErrProtocolVersion, hresp.StatusCode, hresp.Header.Get(ProtocolVersionHeader))
	}
	payload, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponse))
	if err != nil {
		return err
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		var e vsspb.ErrorResponse
		if err := proto.Unmarshal(payload, &e); err != nil {
			return fmt.Errorf("%w (status %d): %v", ErrUndecodable, hresp.StatusCode, err)
		}
		return &Error{Status: hresp.StatusCode, Code: e.ErrorCode, Message: e.Message}
	}
	return proto.Unmarshal(payload, resp)
}
