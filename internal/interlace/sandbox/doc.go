// Package sandbox is a fake Interlace Open API served over real HTTP.
//
// It backs the quick start (`sweeper sandbox`), the end-to-end tests, the chaos harness and the benchmarks. It
// implements the OAuth token flow and every endpoint of the CryptoConnect MoR guide with the guide's response
// shapes and envelopes, keeps an in-memory ledger, makes transfers idempotent, delivers signed webhooks with
// Interlace's retry schedule, and injects upstream faults on demand.
//
// The package deliberately has its own wire structs and does not import the real client
// (internal/interlace): a misreading of the wire format in one must not be hidden by code shared with the
// other.
//
// # Endpoints
//
// Bare JSON (as the docs show): GET /open-api/oauth/authorize, POST /open-api/oauth/access-token,
// POST /open-api/oauth/refresh-token.
//
// Envelope {"code":"000000","message":"success","data":…}: POST /open-api/v3/cryptoconnect/wallets,
// GET /open-api/v3/cryptoconnect/wallets/{id}, POST /open-api/v3/cryptoconnect/wallets/{id}/addresses,
// GET /open-api/v3/cards/wallets, POST /open-api/v3/business/transfer/internal,
// POST /open-api/v3/cryptoconnect/convert/estimate-quote, POST /open-api/v3/cryptoconnect/convert/trades.
//
// Envelope {"code":0,"message":"ok","data":…}: GET /open-api/v3/cryptoconnect/convert/currency-pair,
// POST /open-api/v3/cryptoconnect/transfers/fee-and-quota, POST /open-api/v3/cryptoconnect/transfers,
// GET /open-api/v3/cryptoconnect/transfers/{id} (a deposit, with its current status, or a withdrawal),
// GET /open-api/v3/cryptoconnect/transfers (deposits and withdrawals, newest first; accountId required, limit
// 1..100 default 10, page from 1, startTime <= createTime < endTime in ms, walletId; out of range is a business
// error, never clamped).
//
// Business errors are HTTP 200 with a non-success code in the endpoint's envelope and "data":null: 010001
// invalid parameter, 010021 unknown wallet/balance/transfer, 010023 insufficient balance (10001, 10021, 10023 in
// the numeric family). A missing or expired x-access-token is HTTP 401 with code 010401.
//
// Control endpoints (no token, never faulted): POST /sandbox/deposits, GET /sandbox/ledger, GET and PUT
// /sandbox/faults (PUT replaces every field).
//
// # Realism (contract §12)
//
// Faults beyond the transport ones, each off by default so the quick start stays friendly: DuplicateAnswer
// ("error": code 100409 for a repeated transfer key), PendingRate/PendingMs (internal transfers answered
// PENDING, applied later or FAILED), DropWebhookRate, LegacyEnvelopeRate, RefundAfterCloseRate and
// BudgetBalance. Balances are enforced on every movement (code 010023); Config.EmptyMaster starts the master
// wallet empty. The Ledger is the oracle of the chaos verdict: per deposit its current status and the faults
// drawn for it, per internal transfer its status and whether it was applied, and per idempotency key the class
// of every answer given.
//
// # Choices where the documentation is silent
//
//   - Notification event types are CRYPTO_TRANSFER.CREATED (Pending) and CRYPTO_TRANSFER.UPDATED (Closed); a
//     withdrawal gets the same pair as a deposit. A transfer's Closed notification is released only after its
//     Pending one has had its first attempt.
//   - Retry intervals run from the end of the previous attempt; the Timestamp header is the attempt's time, so
//     it changes between retries while the body and its signature do not.
//   - A repeated idempotencyKey of a blockchain transfer answers the transfer in its current state (it may
//     have been Closed meanwhile); internal transfers answer their current state too (PENDING, then CLOSED or
//     FAILED; a CLOSED answer is byte for byte the same every time) and trades replay their first answer. Only
//     accepted requests are remembered, so a request refused for lack of funds can succeed later under the same
//     key. DuplicateAnswer "error" applies to internal and blockchain transfers, not to trades.
//   - A PENDING internal transfer checks the balance only when it is applied, PendingMs after it was accepted.
//   - A deposit's faults are drawn once when it arrives: a dropped deposit gets no notification at all (its
//     refund included); a legacy one gets all its notifications in the legacy envelope, its businessType drawn
//     from CryptoConnectWallet and AssetsDeposit; a refund happens RefundDelay after the Closed notification's
//     first attempt (or after arrival when nothing is sent) and is all or nothing.
//   - TimeoutAfterCommit closes the connection without a byte of answer. Go's http.Transport transparently
//     resends a request carrying an Idempotency-Key header once when this happens on a reused keep-alive
//     connection, so such clients see fewer drops than the configured rate (the resend is idempotent, and
//     counted in requestsByIdempotencyKey).
//   - Gas is charged on top of the withdrawn amount, from the same wallet and currency: a wallet holding
//     exactly what a trade bought cannot pay it. The master wallet starts with 1000 USDC and 1000 USDT for this.
package sandbox
