package interlace

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// GetData performs one read-only GET below the base URL and returns the answer's data as raw JSON
// (either envelope family), or an *APIError. It is for diagnosis (`sweeper doctor`) of endpoints whose
// shape on a real account is still in doubt: the caller inspects what came back instead of trusting a
// typed decoder. endpoint names the call in errors and metrics.
func (c *Client) GetData(ctx context.Context, endpoint, path string, query url.Values) (json.RawMessage, error) {
	var data json.RawMessage
	if err := c.do(ctx, call{endpoint: endpoint, method: http.MethodGet, path: path, query: query}, &data); err != nil {
		return nil, err
	}
	return data, nil
}
