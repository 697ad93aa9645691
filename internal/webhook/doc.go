// Package webhook receives Interlace notifications (contract.md §3–§4).
//
// The pure part, which never touches the database or HTTP, runs on every
// delivery in this order: ParseEnvelope decodes the outer body strictly (a body
// that two JSON parsers could read differently is refused), Verifier.Verify
// checks the HMAC-SHA256 `Signature` header over the resource text (or the raw
// body) against the current and previous secrets, and ClassifyResource decides
// whether the signed resource is a deposit, validating every field that could
// move money. ParseAmount is the one strict parser for money amounts.
package webhook
