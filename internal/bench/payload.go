package bench

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/webhook"
)

// Wire shapes of a CRYPTO_TRANSFER notification (contract §4), kept here rather
// than borrowed from the sandbox so that the bench signs exactly what Interlace sends.
type (
	wireEndpoint struct {
		Type    string `json:"type"`
		Chain   string `json:"chain,omitempty"`
		ID      string `json:"id,omitempty"`
		Address string `json:"address"`
	}
	wireAmount struct {
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
	}
	wireFee struct {
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
		Type     string `json:"type"`
	}
	wireTransfer struct {
		ID              string       `json:"id"`
		AccountID       string       `json:"accountId"`
		Source          wireEndpoint `json:"source"`
		Destination     wireEndpoint `json:"destination"`
		Amount          wireAmount   `json:"amount"`
		Fees            []wireFee    `json:"fees"`
		Status          string       `json:"status"`
		TransactionHash string       `json:"transactionHash"`
		CreateTime      string       `json:"createTime"`
		UpdateTime      string       `json:"updateTime"`
	}
	wireNotification struct {
		ID         string `json:"id"`
		EventType  string `json:"eventType"`
		APIVersion string `json:"apiVersion"`
		Code       string `json:"code"`
		Message    string `json:"message"`
		Resource   string `json:"resource"`
		CreateTime string `json:"createTime"`
	}
)

// notification is one signed webhook delivery.
type notification struct {
	id         string // notification id
	transferID string
	body       []byte
	signature  string
}

// finalDeposit builds and signs the notification of a new, final (Closed) deposit
// of amount USDC into the sandbox's master wallet: a delivery that creates a
// deposit and its sweep job, the most expensive thing a webhook can do.
func finalDeposit(amount string) notification {
	transferID := uuid.NewString()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	res, _ := json.Marshal(wireTransfer{
		ID: transferID, AccountID: sandbox.DefaultAccountID,
		Source:          wireEndpoint{Type: "blockchain", Chain: "ETH", Address: "0x8f3c2b1a9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"},
		Destination:     wireEndpoint{Type: "cryptoconnect_wallet", ID: sandbox.DefaultMasterWalletID, Address: "0x2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f"},
		Amount:          wireAmount{Amount: amount, Currency: "USDC"},
		Fees:            []wireFee{{Amount: "0", Currency: "USDC", Type: "GAS"}},
		Status:          "Closed",
		TransactionHash: "0x" + hex64(transferID),
		CreateTime:      now, UpdateTime: now,
	})
	n := notification{id: uuid.NewString(), transferID: transferID}
	n.body, _ = json.Marshal(wireNotification{
		ID: n.id, EventType: "CRYPTO_TRANSFER.UPDATED", APIVersion: "v3", Code: "000000",
		Resource: string(res), CreateTime: now,
	})
	n.signature = webhook.Sign([]byte(benchSecret), res)
	return n
}

// depositNotification builds and signs the Closed notification of a deposit
// the sandbox holds, so that Interlace's record (the sandbox's transfer list)
// confirms it: what the bench sends when confirmation is on.
func depositNotification(d sandbox.Deposit) notification {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	res, _ := json.Marshal(wireTransfer{
		ID: d.ID, AccountID: d.AccountID,
		Source:          wireEndpoint{Type: "blockchain", Chain: d.Chain, Address: d.FromAddress},
		Destination:     wireEndpoint{Type: "cryptoconnect_wallet", ID: d.WalletID, Address: d.Address},
		Amount:          wireAmount{Amount: d.Amount.String(), Currency: d.Currency},
		Fees:            []wireFee{{Amount: "0", Currency: d.Currency, Type: "GAS"}},
		Status:          "Closed",
		TransactionHash: d.TransactionHash,
		CreateTime:      d.CreateTime, UpdateTime: now,
	})
	n := notification{id: uuid.NewString(), transferID: d.ID}
	n.body, _ = json.Marshal(wireNotification{
		ID: n.id, EventType: "CRYPTO_TRANSFER.UPDATED", APIVersion: "v3", Code: "000000",
		Resource: string(res), CreateTime: now,
	})
	n.signature = webhook.Sign([]byte(benchSecret), res)
	return n
}

// hex64 stretches an id into a 64-hex-digit transaction hash.
func hex64(id string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i := range out {
		out[i] = digits[(int(id[i%len(id)])+i)%16]
	}
	return string(out)
}
