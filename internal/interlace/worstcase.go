package interlace

import "time"

// AttemptWorstCase is the longest one call through a Client can take: a token
// fetch, the request, one token refresh after a 401, and the request again, each
// under its own deadline. A lease on a job must exceed it, or a second worker may
// replay a request whose first copy is still running (contract §11).
func AttemptWorstCase(requestTimeout time.Duration, oauth bool) time.Duration {
	if requestTimeout <= 0 {
		requestTimeout = defaultTimeout
	}
	var fetch time.Duration
	if oauth {
		fetch = oauthFetchTimeout
	}
	return 2*fetch + 2*requestTimeout
}
