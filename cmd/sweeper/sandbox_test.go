package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func TestSandboxFundMaster(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value   string
		want    string // master USDC at start
		wantErr bool
	}{
		{"", "1000", false}, // the default: the quick start's withdrawals can pay gas
		{"true", "1000", false},
		{"false", "0", false},
		{"0", "0", false},
		{"maybe", "", true},
	}
	for _, tc := range tests {
		t.Run("SANDBOX_FUND_MASTER="+tc.value, func(t *testing.T) {
			t.Parallel()
			get := func(name string) string {
				if name == "SANDBOX_FUND_MASTER" && tc.value != "" {
					return tc.value
				}
				for _, v := range config.SandboxVars {
					if v.Name == name {
						return v.Default
					}
				}
				return ""
			}
			cfg, err := sandboxConfig(get)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "SANDBOX_FUND_MASTER") {
					t.Fatalf("err = %v, want one naming SANDBOX_FUND_MASTER", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			srv := sandbox.New(cfg)
			defer srv.Close()
			w, _ := srv.Wallet(sandbox.DefaultMasterWalletID)
			if got := w.Balances["USDC"]; got.String() != tc.want {
				t.Fatalf("master USDC = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSandboxHelpDocumentsRealism(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	_ = runSandbox(context.Background(), func(string) string { return "" }, []string{"-help"}, &out, &errOut)
	for _, want := range []string{"SANDBOX_FUND_MASTER", "duplicateAnswer", "pendingRate", "pendingMs", "dropWebhookRate",
		"legacyEnvelopeRate", "refundAfterCloseRate", "budgetBalance", "PUT /sandbox/faults"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("sweeper sandbox -help does not mention %s:\n%s", want, out.String())
		}
	}
}
