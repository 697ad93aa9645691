package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// webhookClient posts signed notifications over keep-alive connections, as
// Interlace's delivery workers would.
type webhookClient struct {
	url    string
	client *http.Client
}

func newWebhookClient(addr string, conns int) *webhookClient {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &webhookClient{
		url:    "http://" + addr + "/webhooks/interlace",
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
}

// send delivers n and returns once the app answered (200 = committed).
func (c *webhookClient) send(n notification) error {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(n.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Signature-Method", "HMAC-SHA256")
	req.Header.Set("Signature", n.signature)
	req.Header.Set("Timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: webhook %s answered %d", n.id, resp.StatusCode)
	}
	return nil
}

func (c *webhookClient) close() { c.client.CloseIdleConnections() }
