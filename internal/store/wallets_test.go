package store_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/store"
)

func wallet(id, user string) store.WalletInput {
	return store.WalletInput{ID: id, UserRef: user, ReferenceID: ids.WalletReferenceID(user), AccountID: "acc", Nickname: "n-" + user}
}

func TestWallets(t *testing.T) {
	t.Run("OneUserOneWallet", func(t *testing.T) {
		s, b := setup(t)
		created, err := s.SaveWallet(b.ctx, wallet("w1", "alice"))
		if err != nil || !created {
			t.Fatalf("first save: %v %v", created, err)
		}
		in := wallet("w1", "alice")
		in.Nickname, in.Refreshed = "Alice", true
		in.Balances = []store.WalletBalance{{Currency: "USDC", Available: decimal.RequireFromString("1.000001"), Frozen: decimal.Zero}}
		if created, err := s.SaveWallet(b.ctx, in); err != nil || created {
			t.Fatalf("second save: %v %v", created, err)
		}
		if _, err := s.SaveWallet(b.ctx, wallet("w2", "alice")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second wallet for a user: %v", err)
		}
		if _, err := s.SaveWallet(b.ctx, wallet("w1", "bob")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("wallet moved to another user: %v", err)
		}
		w, err := s.WalletByUserRef(b.ctx, "alice")
		if err != nil || w.ID != "w1" || w.Nickname != "Alice" || w.RefreshedAt == nil || len(w.Balances) != 1 ||
			!w.Balances[0].Available.Equal(decimal.RequireFromString("1.000001")) || w.ReferenceID != ids.WalletReferenceID("alice") {
			t.Fatalf("stored %+v %v", w, err)
		}
		if n := b.count(t, `SELECT count(*) FROM wallets`); n != 1 {
			t.Fatalf("wallets = %d", n)
		}
	})

	t.Run("AddressesAndListing", func(t *testing.T) {
		s, b := setup(t)
		for _, u := range []string{"u1", "u2", "u3"} {
			if _, err := s.SaveWallet(b.ctx, wallet("w-"+u, u)); err != nil {
				t.Fatal(err)
			}
		}
		addrs := []store.WalletAddress{{Currency: "USDC", Chain: "ETH", Address: "0xaa", Selected: true}, {Currency: "USDT", Chain: "TRON", Address: "Tbb"}}
		if err := s.SaveAddresses(b.ctx, "w-u2", addrs); err != nil {
			t.Fatal(err)
		}
		addrs[0].Address = "0xcc" // Interlace answered a new address for the pair: the latest wins
		if err := s.SaveAddresses(b.ctx, "w-u2", addrs[:1]); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveAddresses(b.ctx, "nope", addrs); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("addresses of an unknown wallet: %v", err)
		}
		w, err := s.Wallet(b.ctx, "w-u2")
		if err != nil || len(w.Addresses) != 2 || w.Addresses[0].Address != "0xcc" || w.Addresses[1].Chain != "TRON" {
			t.Fatalf("wallet %+v %v", w, err)
		}
		all, err := s.ListWallets(b.ctx, store.WalletFilter{Limit: 2})
		if err != nil || len(all) != 2 {
			t.Fatalf("page 1: %d %v", len(all), err)
		}
		rest, err := s.ListWallets(b.ctx, store.WalletFilter{After: all[1].ID})
		if err != nil || len(rest) != 1 || rest[0].ID == all[0].ID || rest[0].ID == all[1].ID {
			t.Fatalf("page 2: %+v %v", rest, err)
		}
		one, err := s.ListWallets(b.ctx, store.WalletFilter{UserRef: "u2"})
		if err != nil || len(one) != 1 || len(one[0].Addresses) != 2 {
			t.Fatalf("by user: %+v %v", one, err)
		}
		if _, err := s.Wallet(b.ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing wallet: %v", err)
		}
		if ok, err := s.WalletExists(b.ctx, "w-u1"); !ok || err != nil {
			t.Fatalf("exists: %v %v", ok, err)
		}
	})

	t.Run("SweepLedgerNamesTheUser", func(t *testing.T) {
		s, b := setup(t)
		if _, err := s.SaveWallet(b.ctx, wallet("wallet-1", "carol")); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "5"), store.EffectCreated)
		other := deposit("n2", "t2", "Closed", store.DepositFinal, "5")
		other.Deposit.WalletID = "someone-elses"
		mustIngest(t, s, other, store.EffectCreated)
		var u1, u2 *string
		if err := b.pool.QueryRow(b.ctx, `SELECT (SELECT user_ref FROM sweep_ledger WHERE deposit_id = 't1'),
			(SELECT user_ref FROM sweep_ledger WHERE deposit_id = 't2')`).Scan(&u1, &u2); err != nil {
			t.Fatal(err)
		}
		if u1 == nil || *u1 != "carol" || u2 != nil {
			t.Fatalf("user refs %v %v", u1, u2)
		}
		// The view kept 00001's columns in their order; user_ref is appended (later migrations append more).
		var cols []string
		if err := b.pool.QueryRow(b.ctx, `SELECT array_agg(column_name::text ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_name = 'sweep_ledger'`).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if len(cols) < 20 || cols[0] != "deposit_id" || cols[18] != "attempts" || cols[19] != "user_ref" {
			t.Fatalf("sweep_ledger columns %v", cols)
		}
	})
}
