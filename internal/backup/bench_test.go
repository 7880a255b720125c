package backup_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/lnsig"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

// BenchmarkPersist measures the persist path without HTTP: parsing,
// signature recovery, hashing and the persist_object transaction on a real
// PostgreSQL, with the limits on and off, so their cost shows. 16 writers
// (the load benchmark's concurrency), each its own node.
func BenchmarkPersist(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, limited := range []bool{true, false} {
			b.Run(fmt.Sprintf("size=%dKiB/limits=%t", size>>10, limited), func(b *testing.B) {
				benchmarkPersist(b, size, limited)
			})
		}
	}
}

func benchmarkPersist(b *testing.B, size int, limited bool) {
	pool, _ := pgtest.NewPool(b)
	svc := backup.NewService(postgres.NewStore(pool), backup.SystemClock{}, 5)
	serverKey, _ := btcec.NewPrivateKey()
	tenant := &backup.Tenant{ID: backup.DefaultTenant, Slug: "default", ServerKey: serverKey, Labels: backup.DefaultLabelPolicy()}
	if limited {
		tenant.Limits = backup.Limits{QuotaBytes: 1 << 40, QuotaObjects: 1 << 30, AddressPerMinute: 1 << 30, NodePerMinute: 1 << 30, NewNodesPerAddressPerHour: 1 << 30}
	}
	const writers = 16
	nodes := make([]*btcec.PrivateKey, writers)
	for i := range nodes {
		nodes[i], _ = btcec.NewPrivateKey()
	}
	// Pre-signed distinct bodies: the client's work is not measured.
	reqs := make([]backup.PersistRequest, b.N)
	bodies := make([][]byte, b.N)
	for i := range reqs {
		key := nodes[i%writers]
		body := make([]byte, size)
		_, _ = rand.Read(body)
		sum := sha256.Sum256(body)
		reqs[i] = backup.PersistRequest{
			Tenant: tenant, PublicKey: hex.EncodeToString(key.PubKey().SerializeCompressed()),
			SignedHash: lnsig.SignBackup(key, hex.EncodeToString(sum[:])),
			Challenge:  hex.EncodeToString(sum[:]), Network: "regtest", Label: "channel_monitor",
			ChannelID: fmt.Sprintf("%064x", i%(writers*4)), Address: "192.0.2.1",
		}
		bodies[i] = body
	}
	ctx := context.Background()
	var next atomic.Int64
	b.SetBytes(int64(size))
	b.SetParallelism(writers / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			p, err := backup.ParsePersistRequest(reqs[i])
			if err == nil {
				_, err = svc.Persist(ctx, p, bodies[i])
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
