package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// Drill 3: three server processes on one database behind a round-robin
// client. Logins, limits and quotas live in PostgreSQL, so they must hold
// whichever replica answers.
const (
	replicaCount        = 3
	replicaAddressLimit = 10      // RATE_PER_ADDRESS_PER_MINUTE
	replicaNodeLimit    = 60      // RATE_PER_NODE_PER_MINUTE
	replicaQuotaBytes   = 1 << 20 // QUOTA_BYTES
	quotaBodyBytes      = 64 << 10
	// VSS users write and read their keys beside the checks, each request
	// at the next replica; their rounds stay inside the user's allowance.
	replicaVSSUsers  = 6
	replicaVSSKeys   = 3
	replicaVSSRounds = 12
)

// roundRobin hands out the replicas' URLs in turn, as a load balancer does.
type roundRobin struct {
	urls []string
	n    atomic.Uint64
}

func (rr *roundRobin) next() string {
	return rr.urls[(rr.n.Add(1)-1)%uint64(len(rr.urls))]
}

type replicaFigures struct {
	Replicas       int      `json:"replicas"`
	ServerSettings []string `json:"server_settings"`
	// DuplicateMigrations: rows of goose_db_version for a version applied
	// twice by replicas that started together (must be 0).
	DuplicateMigrations int `json:"duplicate_migrations"`
	// TokensAcross: reads with a token from replica i at replica j, for
	// every i and j, that returned the stored bytes.
	TokensAcross string `json:"tokens_across"`
	// ChallengesAcross: challenges issued by one replica and answered at the
	// next, whose token then worked at the third.
	ChallengesAcross string `json:"challenges_across"`
	// ChallengeReuse is the status of answering a used challenge again at
	// another replica (single use: 400).
	ChallengeReuse int         `json:"challenge_reuse_status"`
	AddressLimit   limitFigure `json:"address_limit"`
	NodeLimit      limitFigure `json:"node_limit"`
	Quota          quotaFigure `json:"quota"`
	// VSS: the VSS users' load, each request at the next replica, so that
	// every read and compare-and-swap version crosses replicas.
	VSS *vssFigures `json:"vss"`
}

// limitFigure is one burst against a rate limit through all replicas.
type limitFigure struct {
	Limit     int            `json:"limit"`
	Sent      int            `json:"sent"`
	Passed    int            `json:"passed"`
	Refused   int            `json:"refused_429"`
	Statuses  map[string]int `json:"statuses"`
	PerServer []int          `json:"passed_per_replica"`
	// Refilled is how many requests the allowance, which refills
	// continuously, gained while the burst ran: at most that many may pass
	// beyond the limit.
	Refilled int `json:"refilled"`
}

type quotaFigure struct {
	QuotaBytes  int            `json:"quota_bytes"`
	Waves       []quotaWave    `json:"waves"`
	UsageBytes  int64          `json:"node_usage_bytes"`
	ObjectBytes int64          `json:"sum_object_size"`
	Objects     int64          `json:"objects"`
	Statuses    map[string]int `json:"statuses"`
}

type quotaWave struct {
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	Refused  int `json:"refused_403"`
	// UsageAfter is node_usage.bytes after the wave.
	UsageAfter int64 `json:"usage_after"`
}

// replicaRun is the state of one replicas drill.
type replicaRun struct {
	e       *env
	dbURL   string
	servers []*serverProcess
	rr      *roundRobin
	hc      *http.Client
}

func replicasDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_replicas")
	if err != nil {
		return nil, err
	}
	settings := []string{
		"RATE_LIMITS=on",
		"RATE_PER_ADDRESS_PER_MINUTE=" + strconv.Itoa(replicaAddressLimit),
		"RATE_PER_NODE_PER_MINUTE=" + strconv.Itoa(replicaNodeLimit),
		"QUOTA_BYTES=" + strconv.Itoa(replicaQuotaBytes),
		// The drill plays a load balancer: each check names its own client
		// address in X-Forwarded-For, so the checks do not share a limit.
		"TRUSTED_PROXIES=127.0.0.1/32",
	}
	r := &replicaRun{e: e, dbURL: dbURL, hc: newHTTPClient(200), rr: &roundRobin{}}
	if err := r.startReplicas(ctx, settings); err != nil {
		return nil, err
	}
	f := &replicaFigures{Replicas: replicaCount, ServerSettings: settings}
	if f.DuplicateMigrations, err = duplicateMigrations(ctx, dbURL); err != nil {
		return f, err
	}
	v.require(f.DuplicateMigrations == 0, "replicas starting together applied %d migrations twice", f.DuplicateMigrations)

	// Each VSS user comes from an address of its own (TEST-NET-3), apart
	// from the checks' addresses.
	vss, err := newVSSLoad(r.hc, func() string { return r.rr.next() + "/vss" }, replicaVSSUsers, replicaVSSKeys, 4<<10,
		func(i int) string { return "203.0.113." + strconv.Itoa(i+1) })
	if err != nil {
		return f, err
	}
	vssDone := make(chan struct{})
	go func() {
		defer close(vssDone)
		vss.run(nil, replicaVSSRounds)
	}()

	steps := []func(context.Context, *replicaFigures, *verdict) error{
		r.tokensAcross, r.challengesAcross, r.addressLimit, r.nodeLimit, r.quota,
	}
	for _, step := range steps {
		if err := step(ctx, f, v); err != nil {
			<-vssDone
			return f, err
		}
	}
	<-vssDone
	f.VSS = vss.figures()
	vss.readBack(ctx, f.VSS)
	f.VSS.check(v, false)
	for _, s := range r.servers {
		checkLogForPanics(s, v)
	}
	return f, nil
}

// startReplicas starts the replicas at the same time: each migrates the
// empty database at start-up, and goose's lock must let only one do it.
func (r *replicaRun) startReplicas(ctx context.Context, settings []string) error {
	r.servers = make([]*serverProcess, replicaCount)
	g, gctx := errgroup.WithContext(ctx)
	for i := range replicaCount {
		g.Go(func() error {
			var err error
			r.servers[i], err = r.e.startServer(gctx, serverSpec{name: fmt.Sprintf("replica-%d", i+1), dbURL: r.dbURL, env: settings})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, s := range r.servers {
		r.rr.urls = append(r.rr.urls, s.BaseURL)
	}
	return nil
}

func duplicateMigrations(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) - count(DISTINCT version_id) FROM goose_db_version WHERE is_applied`).Scan(&n)
	return n, err
}

// addressWallet is a new wallet whose requests come from a client address
// of its own (TEST-NET-2, so it is plainly not a real one).
func addressWallet(n int) (*wallet, error) {
	w, err := newWallet()
	if err != nil {
		return nil, err
	}
	w.forwardedFor = "198.51.100." + strconv.Itoa(n)
	return w, nil
}

// tokensAcross logs in at each replica and reads at every replica with
// each token.
func (r *replicaRun) tokensAcross(ctx context.Context, f *replicaFigures, v *verdict) error {
	w, err := addressWallet(1)
	if err != nil {
		return err
	}
	obj := object{label: "channel_manager"}
	body := randomBytes(4 << 10)
	if res := w.persist(ctx, r.hc, r.servers[0].BaseURL, r.e.serverPub, bytesUpload(obj, body)); !res.acked {
		return fmt.Errorf("persist through replica 1: %s", res.reply)
	}
	ok := 0
	for i, issuer := range r.servers {
		if _, err := w.login(ctx, r.hc, issuer.BaseURL); err != nil {
			return fmt.Errorf("log in at replica %d: %w", i+1, err)
		}
		for j, reader := range r.servers {
			got := w.retrieve(ctx, r.hc, reader.BaseURL, obj, 0)
			if got.status == http.StatusOK && bytes.Equal(got.body, body) {
				ok++
				continue
			}
			v.require(false, "token from replica %d at replica %d: %s", i+1, j+1, got)
		}
	}
	f.TokensAcross = fmt.Sprintf("%d/%d", ok, replicaCount*replicaCount)
	return nil
}

// challengesAcross has each replica issue a challenge that the next one
// answers and the one after accepts the token of; then answers a used
// challenge once more, which must fail wherever it is sent.
func (r *replicaRun) challengesAcross(ctx context.Context, f *replicaFigures, v *verdict) error {
	w, err := addressWallet(2)
	if err != nil {
		return err
	}
	ok, firstChallenge := 0, ""
	for i := range r.servers {
		issuer, answerer, reader := r.servers[i], r.servers[(i+1)%replicaCount], r.servers[(i+2)%replicaCount]
		challenge, got := w.requestChallenge(ctx, r.hc, issuer.BaseURL)
		if challenge == "" {
			return fmt.Errorf("auth/challenge at replica %d: %s", i+1, got)
		}
		if firstChallenge == "" {
			firstChallenge = challenge
		}
		token, got := w.answerChallenge(ctx, r.hc, answerer.BaseURL, challenge)
		if token == "" {
			v.require(false, "challenge from replica %d answered at replica %d: %s", i+1, (i+1)%replicaCount+1, got)
			continue
		}
		list := w.list(ctx, r.hc, reader.BaseURL, token)
		v.require(list.status == http.StatusOK, "token made at replica %d used at replica %d: %s", (i+1)%replicaCount+1, (i+2)%replicaCount+1, list)
		if list.status == http.StatusOK {
			ok++
		}
	}
	f.ChallengesAcross = fmt.Sprintf("%d/%d", ok, replicaCount)
	_, again := w.answerChallenge(ctx, r.hc, r.servers[2].BaseURL, firstChallenge)
	f.ChallengeReuse = again.status
	v.require(again.status == http.StatusBadRequest, "a used challenge answered again at another replica: %s (want 400)", again)
	return nil
}

// addressLimit sends three times the allowance of auth/challenge requests
// at once through the replicas: exactly the allowance may pass.
func (r *replicaRun) addressLimit(ctx context.Context, f *replicaFigures, v *verdict) error {
	w, err := addressWallet(3)
	if err != nil {
		return err
	}
	fig := r.burst(ctx, replicaAddressLimit, 3*replicaAddressLimit, func(ctx context.Context, base string) reply {
		_, got := w.requestChallenge(ctx, r.hc, base)
		return got
	}, v)
	f.AddressLimit = fig
	v.require(fig.Passed >= replicaAddressLimit && fig.Passed <= replicaAddressLimit+fig.Refilled,
		"address limit across replicas: %d logins passed, allowance %d, %d refilled meanwhile (%v)", fig.Passed, replicaAddressLimit, fig.Refilled, fig.Statuses)
	return nil
}

// nodeLimit logs in once, then sends 1.5 times the node's allowance of
// reads at once through the replicas: exactly the allowance may pass.
func (r *replicaRun) nodeLimit(ctx context.Context, f *replicaFigures, v *verdict) error {
	w, err := addressWallet(4)
	if err != nil {
		return err
	}
	if _, err := w.login(ctx, r.hc, r.rr.next()); err != nil {
		return err
	}
	fig := r.burst(ctx, replicaNodeLimit, replicaNodeLimit*3/2, func(ctx context.Context, base string) reply {
		return w.list(ctx, r.hc, base, w.token)
	}, v)
	f.NodeLimit = fig
	v.require(fig.Passed >= replicaNodeLimit && fig.Passed <= replicaNodeLimit+fig.Refilled,
		"node limit across replicas: %d reads passed, allowance %d, %d refilled meanwhile (%v)", fig.Passed, replicaNodeLimit, fig.Refilled, fig.Statuses)
	return nil
}

// burst sends n requests at once, in turn to each replica.
func (r *replicaRun) burst(ctx context.Context, limit, n int, send func(context.Context, string) reply, v *verdict) limitFigure {
	fig := limitFigure{Limit: limit, Sent: n, PerServer: make([]int, replicaCount)}
	start := time.Now()
	var statuses statusCounts
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		replica := i % replicaCount
		wg.Go(func() {
			got := send(ctx, r.servers[replica].BaseURL)
			statuses.add(got)
			mu.Lock()
			defer mu.Unlock()
			switch got.status {
			case http.StatusOK:
				fig.Passed++
				fig.PerServer[replica]++
			case http.StatusTooManyRequests:
				fig.Refused++
				v.require(got.header.Get("Retry-After") != "" && got.jsonError(), "a 429 without Retry-After or JSON error: %s", got)
			}
		})
	}
	wg.Wait()
	fig.Refilled = int(time.Since(start) * time.Duration(limit) / time.Minute)
	fig.Statuses = statuses.snapshot()
	return fig
}

// quota sends concurrent persists of one node through all replicas: new
// objects that together need three times the quota, then shrinking
// overwrites racing new objects. node_usage must never pass the quota, and
// must equal what the node's objects hold.
func (r *replicaRun) quota(ctx context.Context, f *replicaFigures, v *verdict) error {
	w, err := addressWallet(5)
	if err != nil {
		return err
	}
	var statuses statusCounts
	fig := quotaFigure{QuotaBytes: replicaQuotaBytes}
	fits := replicaQuotaBytes / quotaBodyBytes

	// Wave 1: 3x the quota in new objects of equal size; exactly the ones
	// that fit may pass.
	var wave1 []upload
	for i := range 3 * fits {
		wave1 = append(wave1, bytesUpload(monitor(1000+i), randomBytes(quotaBodyBytes)))
	}
	w1, accepted, err := r.quotaWave(ctx, w, wave1, &statuses, v)
	if err != nil {
		return err
	}
	fig.Waves = append(fig.Waves, w1)
	v.require(w1.Accepted == fits, "quota wave 1: %d of %d equal persists accepted, %d fit the quota", w1.Accepted, len(wave1), fits)

	// Wave 2: the stored objects shrink to half while new objects race for
	// the room they free.
	var wave2 []upload
	for _, u := range accepted {
		wave2 = append(wave2, bytesUpload(u.obj, randomBytes(quotaBodyBytes/2)))
	}
	for i := range 2 * fits {
		wave2 = append(wave2, bytesUpload(monitor(2000+i), randomBytes(quotaBodyBytes)))
	}
	w2, _, err := r.quotaWave(ctx, w, wave2, &statuses, v)
	if err != nil {
		return err
	}
	fig.Waves = append(fig.Waves, w2)
	fig.Statuses = statuses.snapshot()

	if fig.UsageBytes, fig.ObjectBytes, fig.Objects, err = nodeUsage(ctx, r.dbURL, w); err != nil {
		return err
	}
	f.Quota = fig
	v.require(fig.UsageBytes == fig.ObjectBytes, "node_usage.bytes %d but the objects hold %d", fig.UsageBytes, fig.ObjectBytes)
	return nil
}

// quotaWave sends uploads at once, in turn to each replica, and checks
// node_usage after it.
func (r *replicaRun) quotaWave(ctx context.Context, w *wallet, uploads []upload, statuses *statusCounts, v *verdict) (quotaWave, []upload, error) {
	wave := quotaWave{Sent: len(uploads)}
	var accepted []upload
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range uploads {
		base := r.rr.next()
		wg.Go(func() {
			res := w.persist(ctx, r.hc, base, r.e.serverPub, u)
			statuses.add(res.reply)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case res.acked:
				wave.Accepted++
				accepted = append(accepted, u)
			case res.status == http.StatusForbidden:
				wave.Refused++
				v.require(isQuotaRefusal(res.body), "a 403 that is not a bytes-quota refusal: %s", res.reply)
			default:
				v.require(false, "quota persist: %s", res.reply)
			}
		})
	}
	wg.Wait()
	used, _, _, err := nodeUsage(ctx, r.dbURL, w)
	wave.UsageAfter = used
	v.require(used <= replicaQuotaBytes, "node_usage.bytes %d is over the quota %d", used, replicaQuotaBytes)
	return wave, accepted, err
}

// isQuotaRefusal: {"error": "quota exceeded", "quota": "bytes", ...}.
func isQuotaRefusal(body []byte) bool {
	var b struct {
		Error string `json:"error"`
		Quota string `json:"quota"`
	}
	return json.Unmarshal(body, &b) == nil && b.Error == "quota exceeded" && b.Quota == "bytes"
}

// nodeUsage reads the node's quota books and what its objects hold.
func nodeUsage(ctx context.Context, dbURL string, w *wallet) (usage, objectBytes, objects int64, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close(ctx)
	key, _ := hex.DecodeString(w.pubHex)
	err = conn.QueryRow(ctx, `
SELECT coalesce((SELECT bytes FROM node_usage WHERE node_key = $1), 0),
       coalesce(sum(size), 0)::bigint, count(*)
FROM objects WHERE node_key = $1`, key).Scan(&usage, &objectBytes, &objects)
	return usage, objectBytes, objects, err
}
