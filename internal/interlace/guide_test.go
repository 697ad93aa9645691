package interlace

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// Identifiers from the MoR guide's examples.
const (
	guideAccount  = "b27c8873-e400-47cd-adc1-035cfa0d5347"
	guideWallet   = "60c667cd-06f4-48c0-85ca-24e570097685"
	guideCCWallet = "32aae8b7-4a69-474f-b7d5-337e190af878"
	guideInfinity = "63b2af21-1e8c-407b-8df9-10adc05963aa"
)

// guideName is the MoR guide's file in the shared reference material, which sits beside the checkout: a
// sibling shared/reference of the repository root (/work/shared beside /work/main and the /work/wt-* worktrees;
// CI copies shared/ next to its clone).
const guideName = "cryptoconnect-mor-guide.txt"

// readGuide finds the repository root by walking up from the package directory to go.mod, and reads the guide
// from ../shared/reference beside it. A missing guide fails the test: a skipped check would let the canned
// answers drift from the guide unnoticed.
func readGuide(t *testing.T) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatalf("no go.mod above %s: cannot locate the repository root, so not the MoR guide beside it", dir)
		}
		root = parent
	}
	path := filepath.Join(filepath.Dir(root), "shared", "reference", guideName)
	guide, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the MoR guide must sit beside the repository as ../shared/reference/%s (looked for %s, repository root %s): %v",
			guideName, path, root, err)
	}
	return guide
}

// TestTestdataIsTheGuidesText proves the canned answers are the guide's own bytes, not a retyped copy.
func TestTestdataIsTheGuidesText(t *testing.T) {
	t.Parallel()
	guide := readGuide(t)
	for _, name := range []string{
		"create_wallet.json", "get_wallet.json", "create_address.json", "list_infinity_wallets.json",
		"internal_transfer_deposit.json", "internal_transfer_redemption.json", "estimate_quote.json",
		"create_trade.json", "fee_and_quota.json", "create_blockchain_transfer.json",
	} {
		if !strings.Contains(string(guide), "Response Example\n"+string(readTestdata(t, name))) {
			t.Errorf("testdata/%s is not a verbatim response example of the guide", name)
		}
	}
}

func checkGuideWallet(t *testing.T, w *Wallet) {
	t.Helper()
	eq(t, "id", w.ID, guideWallet)
	eq(t, "referenceId", w.ReferenceID, "92a86ee7-5bb7-4272-afdb-3865bea9a2d5")
	eq(t, "accountId", w.AccountID, guideAccount)
	eq(t, "nickname", w.Nickname, "Developer")
	eq(t, "master", w.Master, false)
	if len(w.Balances) != 2 {
		t.Fatalf("balances = %+v, want 2", w.Balances)
	}
	for i, cur := range []string{"USDC", "USDT"} {
		b := w.Balances[i]
		eq(t, "balance currency", b.Currency, cur)
		dec(t, cur+" available", b.Available, "0")
		dec(t, cur+" frozen", b.Frozen, "0")
	}
	if w.Addresses == nil || len(w.Addresses) != 0 {
		t.Errorf("addresses = %#v, want empty list", w.Addresses)
	}
}

func TestCreateWalletGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "create_wallet.json")))
	c, obs := newTestClient(t, up.URL)

	w, err := c.CreateWallet(context.Background(), CreateWalletRequest{
		ReferenceID: "92a86ee7-5bb7-4272-afdb-3865bea9a2d5", AccountID: guideAccount, Nickname: "Developer"})
	if err != nil {
		t.Fatal(err)
	}
	checkGuideWallet(t, w)

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/wallets")
	checkHeaders(t, r, "92a86ee7-5bb7-4272-afdb-3865bea9a2d5")
	sameJSON(t, "body", r.Body, `{
"referenceId": "92a86ee7-5bb7-4272-afdb-3865bea9a2d5",
"accountId": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"nickname": "Developer"
}`)
	if got := obs.all(); len(got) != 1 || got[0] != (observation{EndpointCreateWallet, "200"}) {
		t.Errorf("observed %v", got)
	}
}

func TestGetWalletGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "get_wallet.json")))
	c, _ := newTestClient(t, up.URL)

	w, err := c.GetWallet(context.Background(), guideWallet)
	if err != nil {
		t.Fatal(err)
	}
	checkGuideWallet(t, w)

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodGet)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/wallets/"+guideWallet)
	checkHeaders(t, r, "")
	eq(t, "body", string(r.Body), "")
}

func TestCreateAddressGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "create_address.json")))
	c, _ := newTestClient(t, up.URL)

	a, err := c.CreateAddress(context.Background(), guideWallet, CreateAddressRequest{Currency: "USDC", Chain: "ETH"})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "currency", a.Currency, "USDC")
	eq(t, "chain", a.Chain, "ETH")
	eq(t, "address", a.Address, "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2")
	eq(t, "selected", a.Selected, true)

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/wallets/"+guideWallet+"/addresses")
	checkHeaders(t, r, "")
	sameJSON(t, "body", r.Body, `{"currency": "USDC", "chain": "ETH"}`)
}

func TestListInfinityWalletsGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "list_infinity_wallets.json")))
	c, _ := newTestClient(t, up.URL)

	list, err := c.ListInfinityWallets(context.Background(), guideAccount)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("list = %+v, want 1 entry", list)
	}
	w := list[0]
	eq(t, "id", w.ID, guideInfinity)
	eq(t, "accountId", w.AccountID, guideAccount)
	ms(t, "createTime", w.CreateTime, 1700620189590)
	eq(t, "currency", w.Currency, "USD")
	eq(t, "walletType", w.WalletType, 0)
	if w.ObjectType != nil {
		t.Errorf("objectType = %d, want absent", *w.ObjectType)
	}
	dec(t, "available", w.Available, "56846.52")

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodGet)
	eq(t, "path", r.Path, "/open-api/v3/cards/wallets")
	eq(t, "query", r.RawQuery, "accountId="+guideAccount+"&objectType=0&walletType=0") // contract §9: the documented filter, and walletType too
	checkHeaders(t, r, "")
}

func TestInternalTransferGuideDepositExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "internal_transfer_deposit.json")))
	c, _ := newTestClient(t, up.URL)

	tr, err := c.InternalTransfer(context.Background(), InternalTransferRequest{
		ClientTransactionID: "a0f57479-8218-4844-bec6-e819a38af55a",
		AccountID:           guideAccount,
		From:                TransferEndpoint{BusinessType: BusinessTypeCryptoConnect, ID: guideCCWallet, Currency: "USDC"},
		To:                  TransferEndpoint{BusinessType: BusinessTypeInfinity, ID: guideInfinity, Currency: "USD"},
		Amount:              decimal.RequireFromString("10"),
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "clientTransactionId", tr.ClientTransactionID, "a0f57479-8218-4844-bec6-e819a38af55a")
	eq(t, "id", tr.ID, "1986315238040416258")
	eq(t, "status", tr.Status, "CLOSED")
	eq(t, "accountTransferType", tr.AccountTransferType, "SAME_ACCOUNT")

	f := tr.From
	eq(t, "from.id", f.ID, guideCCWallet)
	eq(t, "from.transferId", f.TransferID, "33dd4cfb-ab69-4fd3-b472-358c89f2acb9")
	eq(t, "from.accountId", f.AccountID, guideAccount)
	dec(t, "from.amount", f.Amount, "10")
	dec(t, "from.rate", f.Rate, "1.00") // a JSON number in this example
	eq(t, "from.currency", f.Currency, "USDC")
	eq(t, "from.businessType", f.BusinessType, 2)
	if len(f.Fees) != 1 {
		t.Fatalf("from.fees = %+v", f.Fees)
	}
	eq(t, "from.fees[0].feeType", f.Fees[0].FeeType, 6)
	dec(t, "from.fees[0].amount", f.Fees[0].Amount, "0.05")
	eq(t, "from.fees[0].currency", f.Fees[0].Currency, "USDC")

	to := tr.To
	eq(t, "to.id", to.ID, guideInfinity)
	eq(t, "to.transferId", to.TransferID, "bf7dc081-947e-4eb7-96a2-06fa249516e8")
	eq(t, "to.accountId", to.AccountID, guideAccount)
	dec(t, "to.amount", to.Amount, "9.95")
	dec(t, "to.rate", to.Rate, "0") // absent on this leg
	eq(t, "to.currency", to.Currency, "USD")
	eq(t, "to.businessType", to.BusinessType, 0)
	if len(to.Fees) != 1 {
		t.Fatalf("to.fees = %+v", to.Fees)
	}
	eq(t, "to.fees[0].feeType", to.Fees[0].FeeType, 0)
	dec(t, "to.fees[0].amount", to.Fees[0].Amount, "0")
	eq(t, "to.fees[0].currency", to.Fees[0].Currency, "USD")

	fee, cur, err := f.TotalFees()
	if err != nil {
		t.Fatal(err)
	}
	dec(t, "from fee total", fee, "0.05")
	eq(t, "from fee currency", cur, "USDC")

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/business/transfer/internal")
	checkHeaders(t, r, "a0f57479-8218-4844-bec6-e819a38af55a")
	sameJSON(t, "body", r.Body, `{
"clientTransactionId": "a0f57479-8218-4844-bec6-e819a38af55a",
"accountId": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"from": {
"businessType": 2,
"id": "32aae8b7-4a69-474f-b7d5-337e190af878",
"currency": "USDC"
},
"to": {
"businessType": 0,
"currency": "USD",
"id": "63b2af21-1e8c-407b-8df9-10adc05963aa"
},
"amount": "10"
}`)
}

func TestInternalTransferGuideRedemptionExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "internal_transfer_redemption.json")))
	c, _ := newTestClient(t, up.URL)

	tr, err := c.InternalTransfer(context.Background(), InternalTransferRequest{
		ClientTransactionID: "24ec3603-293b-4f53-8d4d-ed68a3e40828",
		AccountID:           guideAccount,
		From:                TransferEndpoint{BusinessType: BusinessTypeInfinity, ID: guideInfinity, Currency: "USD"},
		To:                  TransferEndpoint{BusinessType: BusinessTypeCryptoConnect, ID: guideAccount, Currency: "USD"},
		Amount:              decimal.RequireFromString("10"),
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "clientTransactionId", tr.ClientTransactionID, "24ec3603-293b-4f53-8d4d-ed68a3e40828")
	eq(t, "id", tr.ID, "1986330518716162050")
	eq(t, "status", tr.Status, "CLOSED")
	eq(t, "accountTransferType", tr.AccountTransferType, "SAME_ACCOUNT")

	f := tr.From
	eq(t, "from.id", f.ID, guideInfinity)
	eq(t, "from.transferId", f.TransferID, "984ccaad-b018-42cf-acc7-c1a74ec85fd9")
	eq(t, "from.accountId", f.AccountID, guideAccount)
	dec(t, "from.amount", f.Amount, "10")
	dec(t, "from.rate", f.Rate, "1")
	eq(t, "from.currency", f.Currency, "USD")
	eq(t, "from.businessType", f.BusinessType, 0)
	if len(f.Fees) != 1 {
		t.Fatalf("from.fees = %+v", f.Fees)
	}
	eq(t, "from.fees[0].feeType", f.Fees[0].FeeType, 0)
	dec(t, "from.fees[0].amount", f.Fees[0].Amount, "0")
	eq(t, "from.fees[0].currency", f.Fees[0].Currency, "USD")

	to := tr.To
	eq(t, "to.id", to.ID, guideAccount)
	eq(t, "to.transferId", to.TransferID, "0875ddd2-d375-4d70-9204-ab6a681a99c7")
	eq(t, "to.accountId", to.AccountID, guideAccount)
	dec(t, "to.amount", to.Amount, "10")
	eq(t, "to.currency", to.Currency, "USD")
	eq(t, "to.businessType", to.BusinessType, 2)
	if to.Fees == nil || len(to.Fees) != 0 {
		t.Errorf("to.fees = %#v, want empty list", to.Fees)
	}

	fee, cur, err := f.TotalFees()
	if err != nil {
		t.Fatal(err)
	}
	dec(t, "from fee total", fee, "0")
	eq(t, "from fee currency", cur, "USD")

	r := up.only(t)
	checkHeaders(t, r, "24ec3603-293b-4f53-8d4d-ed68a3e40828")
	sameJSON(t, "body", r.Body, `{
"clientTransactionId": "24ec3603-293b-4f53-8d4d-ed68a3e40828",
"accountId": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"from": {
"businessType": 0,
"currency": "USD",
"id": "63b2af21-1e8c-407b-8df9-10adc05963aa"
},
"to": {
"businessType": 2,
"id": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"currency": "USD"
},
"amount": "10"
}`)
}

func TestEstimateQuoteGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "estimate_quote.json")))
	c, _ := newTestClient(t, up.URL)

	q, err := c.EstimateQuote(context.Background(), QuoteRequest{AccountID: guideAccount, BaseCurrency: "USDC",
		QuoteCurrency: "USD", Side: "BUY", RFQCurrency: "USD", RFQAmount: decimal.RequireFromString("10")})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "id", q.ID, "4ee15a1c-ade4-4e99-9222-661f33c0a7fe")
	ms(t, "quoteTime", q.QuoteTime, 1762413531106)
	eq(t, "baseCurrency", q.BaseCurrency, "USDC")
	dec(t, "baseAmount", q.BaseAmount, "9.95")
	eq(t, "quoteCurrency", q.QuoteCurrency, "USD")
	dec(t, "quoteAmount", q.QuoteAmount, "10")
	eq(t, "side", q.Side, "BUY")
	dec(t, "rate", q.Rate, "1") // a JSON string in this example
	dec(t, "rfqAmount", q.RFQAmount, "10")
	eq(t, "rfqCurrency", q.RFQCurrency, "USD")
	dec(t, "fee", q.Fee, "0.05")
	eq(t, "feeCurrency", q.FeeCurrency, "USD")
	eq(t, "ttlMs", q.TTLMs, 60000)
	eq(t, "TTL", q.TTL().Seconds(), 60)

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/convert/estimate-quote")
	checkHeaders(t, r, "")
	sameJSON(t, "body", r.Body, `{
"accountId": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"baseCurrency": "USDC",
"quoteCurrency": "USD",
"side": "BUY",
"rfqCurrency": "USD",
"rfqAmount": "10"
}`)
}

func TestCreateTradeGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "create_trade.json")))
	c, _ := newTestClient(t, up.URL)

	tr, err := c.CreateTrade(context.Background(), TradeRequest{ReferenceID: "590a3852-f1aa-494f-a6d5-a3d13a715f70",
		AccountID: guideAccount, BaseCurrency: "USDC", QuoteCurrency: "USD", Side: "BUY", RFQCurrency: "USD",
		RFQAmount: decimal.RequireFromString("10")})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "id", tr.ID, "d8ffbe31-e3d2-4615-9e13-0cae46d09b75")
	eq(t, "accountId", tr.AccountID, guideAccount)
	eq(t, "symbol", tr.Symbol, "USDC-USD")
	eq(t, "baseWalletId", tr.BaseWalletID, guideCCWallet)
	eq(t, "baseCurrency", tr.BaseCurrency, "USDC")
	dec(t, "baseAmount", tr.BaseAmount, "9.95")
	eq(t, "quoteCurrency", tr.QuoteCurrency, "USD")
	dec(t, "quoteAmount", tr.QuoteAmount, "10")
	eq(t, "side", tr.Side, "BUY")
	dec(t, "rate", tr.Rate, "1")
	dec(t, "fee", tr.Fee, "0.05")
	eq(t, "feeCurrency", tr.FeeCurrency, "USD")
	eq(t, "status", tr.Status, "COMPLETE")
	eq(t, "referenceId", tr.ReferenceID, "590a3852-f1aa-494f-a6d5-a3d13a715f70")
	ms(t, "createTime", tr.CreateTime, 1762413577403)
	ms(t, "completeTime", tr.CompleteTime, 1762413578326)

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/convert/trades")
	checkHeaders(t, r, "590a3852-f1aa-494f-a6d5-a3d13a715f70")
	sameJSON(t, "body", r.Body, `{
"referenceId": "590a3852-f1aa-494f-a6d5-a3d13a715f70",
"accountId": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"baseCurrency": "USDC",
"quoteCurrency": "USD",
"side": "BUY",
"rfqCurrency": "USD",
"rfqAmount": "10"
}`)
}

func TestTransferFeeAndQuotaGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "fee_and_quota.json")))
	c, _ := newTestClient(t, up.URL)

	fq, err := c.TransferFeeAndQuota(context.Background(), FeeQuotaRequest{
		AccountID:   guideAccount,
		Source:      Source{Type: "WALLET", ID: guideCCWallet},
		Destination: Destination{Type: "BLOCKCHAIN", Chain: "ARB", Address: "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
		Amount:      Money{Currency: "USDC", Amount: decimal.RequireFromString("10")},
	})
	if err != nil {
		t.Fatal(err)
	}
	dec(t, "crossChainQuota", fq.CrossChainQuota, "10000")
	dec(t, "crossChainFeeRate", fq.CrossChainFeeRate, "0.003")
	dec(t, "crossChainAmount", fq.CrossChainAmount, "0")
	if len(fq.Fees) != 1 {
		t.Fatalf("fees = %+v", fq.Fees)
	}
	dec(t, "fees[0].amount", fq.Fees[0].Amount, "0.2")
	eq(t, "fees[0].currency", fq.Fees[0].Currency, "USDC")
	eq(t, "fees[0].type", fq.Fees[0].Type, "GAS")

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/transfers/fee-and-quota")
	checkHeaders(t, r, "")
	sameJSON(t, "body", r.Body, `{
"accountId": "b27c8873-e400-47cd-adc1-035cfa0d5347",
"source": {
"type": "WALLET",
"id": "32aae8b7-4a69-474f-b7d5-337e190af878"
},
"destination": {
"type": "BLOCKCHAIN",
"chain": "ARB",
"address": "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"
},
"amount": {
"currency": "USDC",
"amount": "10"
}
}`)
}

func checkGuideBlockchainTransfer(t *testing.T, tr *BlockchainTransfer) {
	t.Helper()
	eq(t, "id", tr.ID, "aba46642-edcf-4faa-8942-7d63c967fb07")
	eq(t, "accountId", tr.AccountID, guideAccount)
	eq(t, "idempotencyKey", tr.IdempotencyKey, "bfafe401-a54d-445a-a6c5-4b407b68a2cc")
	eq(t, "source", tr.Source, Source{Type: "cryptoconnect_wallet", ID: guideCCWallet})
	eq(t, "destination", tr.Destination, Destination{Type: "blockchain", Chain: "ETH", Address: "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"})
	dec(t, "amount.amount", tr.Amount.Amount, "9.95")
	eq(t, "amount.currency", tr.Amount.Currency, "USDC")
	if len(tr.Fees) != 1 {
		t.Fatalf("fees = %+v", tr.Fees)
	}
	dec(t, "fees[0].amount", tr.Fees[0].Amount, "0.2")
	eq(t, "fees[0].currency", tr.Fees[0].Currency, "USDC")
	eq(t, "fees[0].type", tr.Fees[0].Type, "GAS")
	eq(t, "status", tr.Status, "Pending")
	eq(t, "transactionHash", tr.TransactionHash, "")
	ms(t, "createTime", tr.CreateTime, 1758276661923)
	ms(t, "updateTime", tr.UpdateTime, 1758276662488)
}

func TestCreateBlockchainTransferGuideExample(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "create_blockchain_transfer.json")))
	c, _ := newTestClient(t, up.URL)

	tr, err := c.CreateBlockchainTransfer(context.Background(), BlockchainTransferRequest{
		IdempotencyKey: "bfafe401-a54d-445a-a6c5-4b407b68a2cc",
		Source:         Source{Type: "cryptoconnect_wallet", ID: guideCCWallet},
		Destination:    Destination{Type: "blockchain", Chain: "ETH", Address: "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
		Amount:         Money{Amount: decimal.RequireFromString("9.95"), Currency: "USDC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGuideBlockchainTransfer(t, tr)

	r := up.only(t)
	eq(t, "method", r.Method, http.MethodPost)
	eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/transfers")
	checkHeaders(t, r, "bfafe401-a54d-445a-a6c5-4b407b68a2cc")
	sameJSON(t, "body", r.Body, `{
"idempotencyKey": "bfafe401-a54d-445a-a6c5-4b407b68a2cc",
"source": {
"type": "cryptoconnect_wallet",
"id": "32aae8b7-4a69-474f-b7d5-337e190af878"
},
"destination": {
"type": "blockchain",
"chain": "ETH",
"address": "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"
},
"amount": {
"amount": "9.95",
"currency": "USDC"
}
}`)
}

// GetBlockchainTransfer is not in the guide: the guide's transfer object is served in both envelopes,
// and a later state (Closed, with a hash) is decoded too.
func TestGetBlockchainTransfer(t *testing.T) {
	t.Parallel()
	guide := string(readTestdata(t, "create_blockchain_transfer.json"))
	closed := `{"code":"000000","message":"success","data":{"id":"aba46642-edcf-4faa-8942-7d63c967fb07",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","idempotencyKey":"bfafe401-a54d-445a-a6c5-4b407b68a2cc",
"source":{"type":"cryptoconnect_wallet","id":"32aae8b7-4a69-474f-b7d5-337e190af878"},
"destination":{"type":"blockchain","chain":"ETH","address":"0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
"amount":{"amount":9.95,"currency":"USDC"},"fees":[{"amount":"0.2","currency":"USDC","type":"GAS"}],
"status":"Closed","transactionHash":"0xabc123","createTime":1758276661923,"updateTime":"1758276999000"}}`
	for _, tc := range []struct {
		name, body, status, hash string
		update                   int64
	}{
		{"GuideObjectNumericEnvelope", guide, "Pending", "", 1758276662488},
		{"ClosedStringEnvelopeNumbersForAmountAndTime", closed, "Closed", "0xabc123", 1758276999000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, answer(200, []byte(tc.body)))
			c, _ := newTestClient(t, up.URL)
			tr, err := c.GetBlockchainTransfer(context.Background(), "aba46642-edcf-4faa-8942-7d63c967fb07")
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "id", tr.ID, "aba46642-edcf-4faa-8942-7d63c967fb07")
			eq(t, "status", tr.Status, tc.status)
			eq(t, "transactionHash", tr.TransactionHash, tc.hash)
			dec(t, "amount", tr.Amount.Amount, "9.95")
			ms(t, "createTime", tr.CreateTime, 1758276661923)
			ms(t, "updateTime", tr.UpdateTime, tc.update)
			if tc.status == "Pending" {
				checkGuideBlockchainTransfer(t, tr)
			}
			r := up.only(t)
			eq(t, "method", r.Method, http.MethodGet)
			eq(t, "path", r.Path, "/open-api/v3/cryptoconnect/transfers/aba46642-edcf-4faa-8942-7d63c967fb07")
			checkHeaders(t, r, "")
		})
	}
}
