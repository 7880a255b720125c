package app_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// TestVSSStoreRules covers every behaviour of the reference server's store
// tests (api/src/kv_store_tests.rs and the PostgreSQL store's own), over
// real HTTP against PostgreSQL, as a client of each kind of deployment sees
// them: the default tenant at /vss with ldk-node's signature header, and a
// tenant at /t/acme/vss with RS256 bearer tokens. Each case is a user of its
// own, with a store id of 0 to 5 characters, as there.
func TestVSSStoreRules(t *testing.T) {
	t.Parallel()
	h := newAuthHarness(t, func(c *config.Config) { c.RateLimits, c.QuotaObjects = false, 20_000 })
	h.addTenant("acme")
	issuer := newJWTIssuer(t)
	h.setVSSAuth("acme", backup.VSSAuthJWT, issuer.pem)
	for _, d := range []struct {
		name string
		user func() *vssUser
	}{
		{"signature at /vss", func() *vssUser {
			key, err := btcec.NewPrivateKey()
			require.NoError(t, err)
			return h.vssUserOf(hex.EncodeToString(key.PubKey().SerializeCompressed()), signedClient(h, "/vss", key))
		}},
		{"jwt at /t/acme/vss", func() *vssUser {
			sub := "user-" + hex.EncodeToString(randomBytes(t, 6))
			return h.vssUserOf(sub, vssclient.New(h.url+"/t/acme/vss", h.http, vssclient.Bearer(issuer.token(t, sub, h.clock.Now().Add(24*time.Hour)))))
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			vssStoreRules(t, h, d.user)
		})
	}
}

func vssStoreRules(t *testing.T, h *harness, newUser func() *vssUser) {
	ctx := context.Background()

	t.Run("single object puts, conditional and blind", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("k1", "k1v1", 0)))
		require.NoError(t, u.put(i64(1), kv("k1", "k1v2", 1)))
		require.NoError(t, u.put(i64(2), kv("k2", "k2v1", -1)))
		require.NoError(t, u.put(i64(3), kv("k2", "k2v2", -1)))
		require.NoError(t, u.put(i64(4), kv("k2", "k2v3", -1)))
		u.requireValue("k1", "k1v2", 2)
		u.requireValue("k2", "k2v3", 1) // a blind write leaves version 1
		require.EqualValues(t, 5, u.globalVersion())
	})

	t.Run("multi object puts", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("k1", "k1v1", 0), kv("k2", "k2v1", 0)))
		require.NoError(t, u.put(i64(1), kv("k1", "k1v2", 1), kv("k2", "k2v2", 1)))
		u.requireValue("k1", "k1v2", 2)
		u.requireValue("k2", "k2v2", 2)
		require.EqualValues(t, 2, u.globalVersion())
	})

	t.Run("key version mismatch conflicts and changes nothing", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("k1", "k1v1", 0)))
		require.ErrorIs(t, u.put(i64(1), kv("k1", "k1v2", 0)), vssclient.ErrConflict)
		u.requireValue("k1", "k1v1", 1)
		require.EqualValues(t, 1, u.globalVersion())
	})

	t.Run("one mismatched key fails the whole request", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(nil, kv("k1", "k1v1", 0), kv("k2", "k2v1", 0)))
		require.ErrorIs(t, u.put(nil, kv("k1", "k1v2", 0), kv("k2", "k2v2", 1)), vssclient.ErrConflict)
		u.requireValue("k1", "k1v1", 1)
		u.requireValue("k2", "k2v1", 1)
	})

	t.Run("global version mismatch conflicts", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("k1", "k1v1", 0)))
		require.ErrorIs(t, u.put(i64(0), kv("k1", "k1v2", 1)), vssclient.ErrConflict)
		u.requireValue("k1", "k1v1", 1)
	})

	t.Run("puts without a global version leave it at 0", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(nil, kv("k1", "k1v1", 0)))
		require.NoError(t, u.put(nil, kv("k1", "k1v2", 1)))
		u.requireValue("k1", "k1v2", 2)
		require.EqualValues(t, 0, u.globalVersion())
	})

	t.Run("puts and deletes are one transaction", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(nil, kv("k1", "k1v1", 0)))
		require.NoError(t, u.putDelete(nil, items(kv("k2", "k2v1", 0)), items(kv("k1", "", 1))))
		u.requireValue("k2", "k2v1", 1)
		u.requireNoKey("k1")

		// A delete that does not match fails the put with it...
		require.ErrorIs(t, u.putDelete(nil, items(kv("k3", "k3v1", 0)), items(kv("k2", "", 3))), vssclient.ErrConflict)
		u.requireNoKey("k3")
		u.requireValue("k2", "k2v1", 1)
		// ...a put that does not match fails the delete with it...
		require.ErrorIs(t, u.putDelete(nil, items(kv("k3", "k3v1", 1)), items(kv("k2", "", 1))), vssclient.ErrConflict)
		// ...and so does a global version that does not match.
		require.ErrorIs(t, u.putDelete(i64(2), items(kv("k3", "k3v1", 0)), items(kv("k2", "", 1))), vssclient.ErrConflict)
		u.requireNoKey("k3")
		u.requireValue("k2", "k2v1", 1)
		require.EqualValues(t, 0, u.globalVersion())

		// Inside a put, deleting a key that does not exist is a conflict,
		// with version -1 as with any other.
		require.ErrorIs(t, u.putDelete(nil, items(kv("k4", "v", 0)), items(kv("missing", "", -1))), vssclient.ErrConflict)
		u.requireNoKey("k4")
		require.ErrorIs(t, u.putDelete(nil, nil, items(kv("missing", "", 0))), vssclient.ErrConflict)
	})

	t.Run("delete of an existing key, conditional and not", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(nil, kv("k1", "k1v1", 0)))
		require.NoError(t, u.del(kv("k1", "", 1)))
		u.requireNoKey("k1")
		require.NoError(t, u.put(nil, kv("k1", "k1v1", 0)))
		require.NoError(t, u.put(nil, kv("k1", "k1v2", 1)))
		require.NoError(t, u.del(kv("k1", "", -1)))
		u.requireNoKey("k1")
	})

	t.Run("a lone delete is idempotent", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.del(kv("non_existent_key", "", 0)))
		require.NoError(t, u.put(nil, kv("k1", "k1v1", 0)))
		require.NoError(t, u.del(kv("k1", "", 1)))
		require.NoError(t, u.del(kv("k1", "", 1)))
		u.requireNoKey("k1")
		// A conditional delete of another version deletes nothing, and
		// still succeeds.
		require.NoError(t, u.put(nil, kv("k2", "v", 0)))
		require.NoError(t, u.del(kv("k2", "", 5)))
		u.requireValue("k2", "v", 1)
	})

	t.Run("get of a missing key", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		u.requireNoKey("non_existent_key")
	})

	t.Run("get returns the latest value and version", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("k1", "k1v1", 0)))
		u.requireValue("k1", "k1v1", 1)
		require.NoError(t, u.put(i64(1), kv("k1", "k1v2", 1), kv("k2", "k2v1", 0)))
		u.requireValue("k1", "k1v2", 2)
		u.requireValue("k2", "k2v1", 1)
		require.NoError(t, u.put(i64(2), kv("k2", "k2v2", 1), kv("k3", "k3v1", 0)))
		u.requireValue("k2", "k2v2", 2)
		u.requireValue("k3", "k3v1", 1)
	})

	t.Run("list pages every key, global version on the first page only", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		for i := range 1000 {
			require.NoError(t, u.put(i64(int64(i)), kv(fmt.Sprint("k", i), "k1v1", 0)))
		}
		require.NoError(t, u.put(i64(1000), kv("k1", "k1v2", 1)))
		require.NoError(t, u.put(i64(1001), kv("k2", "k2v2", 1)))
		require.NoError(t, u.put(i64(1002), kv("k2", "k2v3", 2)))

		var all []*vsspb.KeyValue
		var token *string
		for pages := 0; ; pages++ {
			page := u.list(token, nil, nil)
			if token == nil {
				require.NotNil(t, page.GlobalVersion)
				require.EqualValues(t, 1003, *page.GlobalVersion)
			} else {
				require.Nil(t, page.GlobalVersion, "only the first page carries the global version")
			}
			require.LessOrEqual(t, len(page.KeyVersions), 100, "pages are capped at 100 keys")
			all = append(all, page.KeyVersions...)
			require.NotNil(t, page.NextPageToken, "the last page's token is empty, not absent")
			if page.GetNextPageToken() == "" {
				require.Equal(t, 10, pages+1)
				break
			}
			token = page.NextPageToken
		}
		versions := map[string]int64{}
		for _, k := range all {
			require.Empty(t, k.Value, "lists carry no values")
			_, dup := versions[k.Key]
			require.False(t, dup, "key %s listed twice", k.Key)
			versions[k.Key] = k.Version
		}
		require.Len(t, versions, 1000)
		require.EqualValues(t, 2, versions["k1"])
		require.EqualValues(t, 3, versions["k2"])
		require.NotContains(t, versions, "global_version")
	})

	t.Run("list honours page size and key prefix", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		for i := range 20 {
			require.NoError(t, u.put(i64(int64(i)), kv(fmt.Sprint(i, "k"), "k1v1", 0)))
		}
		var keys []string
		var token *string
		for {
			page := u.list(token, i32(5), str("1"))
			require.LessOrEqual(t, len(page.KeyVersions), 5)
			for _, k := range page.KeyVersions {
				keys = append(keys, k.Key)
			}
			if page.GetNextPageToken() == "" {
				break
			}
			token = page.NextPageToken
		}
		require.ElementsMatch(t, []string{"1k", "10k", "11k", "12k", "13k", "14k", "15k", "16k", "17k", "18k", "19k"}, keys)
	})

	t.Run("list without global versioning answers 0", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		puts := make([]*vsspb.KeyValue, 1000)
		for i := range puts {
			puts[i] = kv(fmt.Sprint("k", i), "k1v1", 0)
		}
		require.NoError(t, u.put(nil, puts...))
		page := u.list(nil, nil, nil)
		require.NotNil(t, page.GlobalVersion)
		require.Zero(t, *page.GlobalVersion)
		all, _, err := u.c.ListAll(ctx, u.store, "", nil)
		require.NoError(t, err)
		require.Len(t, all, 1000)
	})

	t.Run("list caps the page size", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		// 10,000 keys in ten requests of 1,000 (the most one may hold).
		for r := range 10 {
			puts := make([]*vsspb.KeyValue, 1000)
			for i := range puts {
				puts[i] = kv(fmt.Sprint("k", r*1000+i), "v", 0)
			}
			require.NoError(t, u.put(nil, puts...))
		}
		var n int
		var token *string
		for {
			page := u.list(token, i32(5000), nil)
			require.LessOrEqual(t, len(page.KeyVersions), 100)
			n += len(page.KeyVersions)
			if page.GetNextPageToken() == "" {
				break
			}
			token = page.NextPageToken
		}
		require.Equal(t, 10_000, n)
	})

	t.Run("list runs newest created first", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("z_first", "v1", 0)))
		require.NoError(t, u.put(i64(1), kv("a_third", "v1", 0)))
		require.NoError(t, u.put(i64(2), kv("m_second", "v1", 0)))
		page := u.list(nil, nil, nil)
		require.EqualValues(t, 3, page.GetGlobalVersion())
		require.Equal(t, []string{"m_second", "a_third", "z_first"}, keysOf(page))

		// An overwrite keeps a key's place; a key deleted and written again
		// is new.
		require.NoError(t, u.put(nil, kv("z_first", "v2", -1)))
		require.Equal(t, []string{"m_second", "a_third", "z_first"}, keysOf(u.list(nil, nil, nil)))
		require.NoError(t, u.del(kv("a_third", "", -1)))
		require.NoError(t, u.put(nil, kv("a_third", "v", 0)))
		require.Equal(t, []string{"a_third", "m_second", "z_first"}, keysOf(u.list(nil, nil, nil)))
	})

	t.Run("list pages by creation with a prefix", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(i64(0), kv("pfx_z", "v1", 0)))
		require.NoError(t, u.put(i64(1), kv("pfx_a", "v1", 0)))
		require.NoError(t, u.put(i64(2), kv("other", "v1", 0)))
		require.NoError(t, u.put(i64(3), kv("pfx_m", "v1", 0)))
		var keys []string
		var token *string
		for {
			page := u.list(token, i32(1), str("pfx_"))
			if token == nil {
				require.EqualValues(t, 4, page.GetGlobalVersion())
			} else {
				require.Nil(t, page.GlobalVersion)
			}
			require.LessOrEqual(t, len(page.KeyVersions), 1)
			keys = append(keys, keysOf(page)...)
			if page.GetNextPageToken() == "" {
				break
			}
			token = page.NextPageToken
		}
		require.Equal(t, []string{"pfx_m", "pfx_a", "pfx_z"}, keys)
	})

	t.Run("page size 0 answers only the global version", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		for i := range 3 {
			require.NoError(t, u.put(i64(int64(i)), kv(fmt.Sprint("k", i), "v1", 0)))
		}
		page := u.list(nil, i32(0), nil)
		require.Empty(t, page.KeyVersions)
		require.EqualValues(t, 3, page.GetGlobalVersion())
		require.Empty(t, page.GetNextPageToken())
	})

	t.Run("an exact fit ends with an empty token", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		for i := range 5 {
			require.NoError(t, u.put(i64(int64(i)), kv(fmt.Sprint("k", i), "v1", 0)))
		}
		page := u.list(nil, i32(5), nil)
		require.Len(t, page.KeyVersions, 5)
		require.EqualValues(t, 5, page.GetGlobalVersion())
		require.Empty(t, page.GetNextPageToken())

		require.NoError(t, u.put(i64(5), kv("k5", "v1", 0)))
		first := u.list(nil, i32(5), nil)
		require.Len(t, first.KeyVersions, 5)
		require.EqualValues(t, 6, first.GetGlobalVersion())
		require.NotEmpty(t, first.GetNextPageToken())
		second := u.list(first.NextPageToken, i32(5), nil)
		require.Len(t, second.KeyVersions, 1)
		require.Empty(t, second.GetNextPageToken())
		require.Nil(t, second.GlobalVersion)
	})

	t.Run("page tokens", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		require.NoError(t, u.put(nil, kv("a", "v", 0)))
		for _, bad := range []string{"", "abc", "-1", "-67", "+5", "1.5", "99999999999999999999"} {
			_, err := u.c.ListKeyVersions(ctx, &vsspb.ListKeyVersionsRequest{StoreId: u.store, PageToken: str(bad)})
			require.ErrorIs(t, err, vssclient.ErrInvalidRequest, "token %q", bad)
		}
		// A token past every key is an empty last page.
		page := u.list(str("0"), nil, nil)
		require.Empty(t, page.KeyVersions)
		require.Empty(t, page.GetNextPageToken())
	})

	t.Run("global_version is a key with quirks", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		// Never written: a get answers version 0 with no value.
		got, err := u.get("global_version")
		require.NoError(t, err)
		require.Equal(t, "global_version", got.Key)
		require.Zero(t, got.Version)
		require.Empty(t, got.Value)
		require.NoError(t, u.put(i64(0), kv("k", "v", 0)))
		require.EqualValues(t, 1, u.globalVersion())
		// Lists never show it, whatever the prefix.
		require.Equal(t, []string{"k"}, keysOf(u.list(nil, nil, nil)))
		require.Empty(t, u.list(nil, nil, str("global")).KeyVersions)
		require.NoError(t, u.put(i64(1), kv("k", "v2", 1)))
		require.EqualValues(t, 2, u.globalVersion())
		require.ErrorIs(t, u.put(i64(7), kv("k", "v3", 2)), vssclient.ErrConflict)
		// A global version of -1 writes it blind, as any key: it becomes 1.
		require.NoError(t, u.put(i64(-1), kv("k", "v3", 2)))
		require.EqualValues(t, 1, u.globalVersion())
		u.requireValue("k", "v3", 3)
	})

	t.Run("store ids are separate keyspaces", func(t *testing.T) {
		t.Parallel()
		u := newUser()
		other := *u
		other.store = u.store + "x"
		require.NoError(t, u.put(i64(0), kv("k", "mine", 0)))
		other.requireNoKey("k")
		require.EqualValues(t, 0, other.globalVersion())
		require.NoError(t, other.put(i64(0), kv("k", "other", 0)))
		u.requireValue("k", "mine", 1)
	})
}

func items(kvs ...*vsspb.KeyValue) []*vsspb.KeyValue { return kvs }

func keysOf(page *vsspb.ListKeyVersionsResponse) []string {
	keys := make([]string, 0, len(page.KeyVersions))
	for _, k := range page.KeyVersions {
		keys = append(keys, k.Key)
	}
	return keys
}
