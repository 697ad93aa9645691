package interlace

import "time"

// tokenRequests is how many requests one token fetch makes (authorize, then
// access-token); a caller waits for a token at most that many request timeouts.
const tokenRequests = 2

// AttemptWorstCase is the longest one call through a Client can take: a wait for
// a token, the request, a wait for a fresh token after a 401, and the request
// again, each bounded by the request timeout. A lease on a job must exceed it,
// or a second worker may replay a request whose first copy is still running
// (contract §11). With a static token there is no fetch to wait for.
func AttemptWorstCase(requestTimeout time.Duration, oauth bool) time.Duration {
	if requestTimeout <= 0 {
		requestTimeout = defaultTimeout
	}
	var fetch time.Duration
	if oauth {
		fetch = tokenRequests * requestTimeout
	}
	return 2*fetch + 2*requestTimeout
}
