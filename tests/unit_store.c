/*
 * unit_store: the SQLite store through store.h, on a real database file.
 *
 * Covers what the HTTP tests cannot reach precisely: lease fencing (a stale
 * worker writes nothing), the circuit breaker holding pending deliveries,
 * claim skipping endpoints at their cap, claims finding what every kind of
 * write made due, idempotency inside one group commit,
 * the memory a large release takes, and the per-minute rollup behind the
 * stats API, including a store seeded with 1,000,000 attempts answering a
 * 24 h query.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal.h"
#include "secret.h"
#include "store.h"
#include "timeutil.h"
#include "seed.h"
#include "unit.h"

#define T0 1778162400000LL /* 2026-05-07T14:00:00Z */

/* The database file and what SQLite and hookd keep beside it. */
static void remove_tmp(const char *path)
{
	static const char *const suffix[] = { "", "-wal", "-shm", ".lock" };
	char f[300];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
		unlink(f);
	}
}

static struct store *open_tmp(const char *name, char *path, size_t cap,
                             const struct store_options *opt)
{
	snprintf(path, cap, "/tmp/hookd-unit-%s-%d.db", name, (int)getpid());
	remove_tmp(path);
	struct store *s = NULL;
	struct hk_err err;
	if (store_open(path, opt, &s, &err) != HK_OK) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return s;
}

/* A store of its own for one test, with one org named after it. */
static struct store *open_with_org(const char *name, char *path, size_t cap,
                                   const struct store_options *opt, int64_t *org)
{
	struct store *s = open_tmp(name, path, cap, opt);
	struct hk_err err;
	if (store_org_create(s, name, name, T0, org, &err) != HK_OK) {
		fprintf(stderr, "org_create: %s\n", err.msg);
		exit(1);
	}
	return s;
}

static void make_endpoint_with(struct store *s, int64_t org, const char *types,
                               const char *secret, struct store_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	uuid_v7(ep->id);
	ep->org_id = org;
	ep->url = "https://example.com/hook";
	ep->description = "";
	ep->event_types = (char *)types;
	ep->secret = (char *)secret;
	ep->is_active = true;
	ep->created_at = T0;
	struct hk_err err;
	if (store_endpoint_create(s, ep, &err) != HK_OK) {
		fprintf(stderr, "endpoint_create: %s\n", err.msg);
		exit(1);
	}
}

static void make_endpoint(struct store *s, int64_t org, const char *types, struct store_endpoint *ep)
{
	make_endpoint_with(s, org, types, "s3cret", ep);
}

static void fill_publish(struct store_publish *p, int64_t org, const char *type, const char *key,
                         const char *body)
{
	memset(p, 0, sizeof(*p));
	p->org_id = org;
	uuid_v7(p->event_id);
	p->event_type = type;
	p->body = body;
	p->body_len = strlen(body);
	p->idem_key = key;
	secret_sha256(body, strlen(body), p->req_hash);
	p->created_at = T0;
	p->idem_window_ms = 24 * 3600 * 1000LL;
}

static void test_publish_and_idempotency(struct store *s, int64_t org)
{
	struct store_endpoint a, b;
	make_endpoint(s, org, "[\"x.y\"]", &a);
	make_endpoint(s, org, "[\"*\"]", &b);
	struct store_publish p[4];
	fill_publish(&p[0], org, "x.y", "k", "{\"v\":1}");
	fill_publish(&p[1], org, "x.y", "k", "{\"v\":1}"); /* same key, same body: replay */
	fill_publish(&p[2], org, "x.y", "k", "{\"v\":2}"); /* same key, other body: conflict */
	fill_publish(&p[3], org, "other", NULL, "{}");
	struct hk_err err;
	CHECK(store_publish_batch(s, p, 4, &err) == HK_OK, "publish batch commits");
	CHECK(p[0].status == HK_OK && !p[0].replayed && p[0].deliveries == 2, "fan-out to exact and *");
	CHECK(p[1].replayed && strcmp(p[1].out_event_id, p[0].event_id) == 0 && p[1].deliveries == 2,
	      "replay inside one group commit answers the first event");
	CHECK(p[2].status == HK_ECONFLICT, "reused key with another body conflicts");
	CHECK(p[3].deliveries == 1, "only * matches an unsubscribed type");
	struct store_delivery_filter f = { .org_id = org, .endpoint_id = b.id, .limit = 10 };
	struct store_delivery *ds;
	size_t n;
	int64_t total;
	CHECK(store_delivery_list(s, &f, &ds, &n, &total, &err) == HK_OK && total == 2 && n == 2,
	      "two deliveries on the * endpoint");
	free(ds);
	f.org_id = org + 1000;
	CHECK(store_delivery_list(s, &f, &ds, &n, &total, &err) == HK_OK && total == 0,
	      "another org sees none of them");
	free(ds);
}

static void test_lease_fencing(struct store *s, int64_t org)
{
	struct store_endpoint ep;
	make_endpoint(s, org, "[\"fence\"]", &ep);
	struct store_publish p;
	fill_publish(&p, org, "fence", NULL, "{}");
	struct hk_err err;
	store_publish_batch(s, &p, 1, &err);
	struct store_job jobs[8];
	size_t n = 0;
	/* Skip every other endpoint of this org by claiming only well past them. */
	int64_t now = T0 + 1000;
	CHECK(store_claim(s, now, now + 30000, 8, NULL, jobs, &n, &err) == HK_OK && n >= 1,
	      "due deliveries are claimed");
	size_t mine = n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(jobs[i].endpoint_id, ep.id) == 0)
			mine = i;
	CHECK(mine < n, "the fence endpoint's delivery was claimed");
	struct store_job job = jobs[mine];
	jobs[mine].mem = NULL;
	for (size_t i = 0; i < n; i++)
		store_job_clear(&jobs[i]);
	size_t n2 = 0;
	CHECK(store_claim(s, now + 1000, now + 31000, 8, NULL, jobs, &n2, &err) == HK_OK && n2 == 0,
	      "a leased delivery is not claimed twice");
	/* The lease expires: another worker claims it. */
	CHECK(store_claim(s, now + 40000, now + 70000, 8, NULL, jobs, &n2, &err) == HK_OK && n2 >= 1,
	      "an expired lease makes the delivery due again");
	struct store_result r = {
		.delivery_id = job.delivery_id, .endpoint_id = job.endpoint_id, .lease = job.lease,
		.row = job.row,
		.attempt_number = 1, .started_at = now, .duration_ms = 5, .http_status = 200,
		.success = true, .status = DELIVERY_SUCCEEDED,
	};
	char paused[1][UUID_STR_LEN];
	size_t np;
	CHECK(store_record(s, &r, 1, 10, paused, &np, &err) == HK_OK && r.fenced,
	      "the stale worker's result is fenced off");
	for (size_t i = 0; i < n2; i++) {
		struct store_result r2 = r;
		r2.delivery_id = jobs[i].delivery_id;
		r2.endpoint_id = jobs[i].endpoint_id;
		r2.lease = jobs[i].lease;
		r2.row = jobs[i].row;
		CHECK(store_record(s, &r2, 1, 10, paused, &np, &err) == HK_OK && !r2.fenced,
		      "the current lease holder records");
		store_job_clear(&jobs[i]);
	}
	struct store_delivery d;
	char *body;
	struct store_attempt *at;
	size_t na;
	CHECK(store_delivery_get(s, org, job.delivery_id, &d, &body, &at, &na, &err) == HK_OK &&
	      na == 1 && d.status == DELIVERY_SUCCEEDED, "exactly one attempt recorded");
	free(body);
	store_attempt_free_array(at, na);
	store_job_clear(&job);
}

/* A claimed delivery given back unattempted is due again at once, but only
 * by the holder of its lease. On a store of its own: nothing else is due. */
static void test_unclaim(void)
{
	char path[256];
	int64_t org;
	struct store *s = open_with_org("unclaim", path, sizeof(path), NULL, &org);
	struct hk_err err;
	struct store_endpoint ep;
	make_endpoint(s, org, "[\"back\"]", &ep);
	struct store_publish p;
	fill_publish(&p, org, "back", NULL, "{}");
	store_publish_batch(s, &p, 1, &err);
	struct store_job jobs[2];
	size_t n = 0;
	int64_t now = T0 + 1000;
	CHECK(store_claim(s, now, now + 30000, 2, NULL, jobs, &n, &err) == HK_OK && n == 1,
	      "the delivery is claimed");
	struct store_lease stale = { .lease = jobs[0].lease + 1 }, mine = { .lease = jobs[0].lease };
	memcpy(stale.delivery_id, jobs[0].delivery_id, UUID_STR_LEN);
	memcpy(mine.delivery_id, jobs[0].delivery_id, UUID_STR_LEN);
	store_job_clear(&jobs[0]);
	CHECK(store_unclaim(s, &stale, 1, now + 10, &err) == HK_OK, "unclaim with another lease runs");
	CHECK(store_claim(s, now + 20, now + 30000, 2, NULL, jobs, &n, &err) == HK_OK && n == 0,
	      "another lease gives nothing back");
	CHECK(store_unclaim(s, &mine, 1, now + 30, &err) == HK_OK, "unclaim with its lease runs");
	CHECK(store_claim(s, now + 40, now + 30000, 2, NULL, jobs, &n, &err) == HK_OK && n == 1 &&
	      strcmp(jobs[0].delivery_id, mine.delivery_id) == 0 && jobs[0].lease != mine.lease,
	      "given back, it is claimed again at once, under a new lease");
	for (size_t i = 0; i < n; i++)
		store_job_clear(&jobs[i]);
	store_close(s);
	remove_tmp(path);
}

/* One claim over more endpoints than its memo of opened secrets holds, with
 * the secrets sealed at rest: every job carries its own endpoint's secret. */
static void test_claim_secrets(void)
{
	enum { EPS = 40 }; /* the memo holds 16 (store_int.h) */
	struct seal seal = { .n = 1 };
	seal.keys[0].version = 1;
	memset(seal.keys[0].key, 7, sizeof(seal.keys[0].key));
	struct store_options opt = { .seal = &seal };
	char path[256];
	int64_t org;
	struct store *s = open_with_org("secrets", path, sizeof(path), &opt, &org);
	struct hk_err err;
	struct store_endpoint ep[EPS];
	char secret[EPS][32];
	for (int i = 0; i < EPS; i++) {
		snprintf(secret[i], sizeof(secret[i]), "secret-of-endpoint-%d", i);
		make_endpoint_with(s, org, "[\"many\"]", secret[i], &ep[i]);
	}
	struct store_publish p[2];
	for (int i = 0; i < 2; i++)
		fill_publish(&p[i], org, "many", NULL, "{}");
	store_publish_batch(s, p, 2, &err);
	struct store_job jobs[2 * EPS];
	size_t n = 0;
	CHECK(store_claim(s, T0 + 1000, T0 + 30000, 2 * EPS, NULL, jobs, &n, &err) == HK_OK &&
	      n == 2 * EPS, "one claim takes every endpoint's deliveries");
	int right = 0;
	for (size_t j = 0; j < n; j++) {
		for (int i = 0; i < EPS; i++)
			right += strcmp(jobs[j].endpoint_id, ep[i].id) == 0 &&
			         strcmp(jobs[j].secret, secret[i]) == 0;
		store_job_clear(&jobs[j]);
	}
	CHECK(right == 2 * EPS, "each job has its own endpoint's secret, opened from the seal");
	store_close(s);
	remove_tmp(path);
}

/* Re-enabling an endpoint changes its row alone, whatever its backlog. It
 * used to mark every pending delivery claimable again: 100,000 rows
 * rewritten, in chunks on a thread of the store's. The WAL, emptied just
 * before, shows what the re-enable wrote. */
static void test_reenable_writes_the_endpoint_alone(void)
{
	enum { PENDING = 100000, BATCH = 2000 };
	char path[256];
	int64_t org;
	struct store *s = open_with_org("reenable", path, sizeof(path), NULL, &org);
	struct hk_err err;
	struct store_endpoint ep, out;
	make_endpoint(s, org, "[\"waits\"]", &ep);
	struct store_endpoint_patch off = { .is_active = 0 }, on = { .is_active = 1 };
	store_endpoint_update(s, org, ep.id, &off, T0, &out, &err);
	store_endpoint_clear(&out);
	struct store_publish *p = calloc(BATCH, sizeof(*p));
	size_t pending = 0;
	for (int done = 0; p && done < PENDING; done += BATCH) {
		for (int i = 0; i < BATCH; i++)
			fill_publish(&p[i], org, "waits", NULL, "{}");
		if (store_publish_batch(s, p, BATCH, &err) == HK_OK)
			for (int i = 0; i < BATCH; i++)
				pending += p[i].deliveries;
	}
	free(p);
	CHECK(pending == PENDING, "100,000 deliveries wait behind the disabled endpoint");
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK &&
	      sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK,
	      "the WAL is emptied");
	sqlite3_close(db);
	CHECK(store_endpoint_update(s, org, ep.id, &on, T0, &out, &err) == HK_OK,
	      "the endpoint is enabled again");
	char wal[300];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	struct stat st;
	char detail[64];
	snprintf(detail, sizeof(detail), "(%lld bytes)", stat(wal, &st) == 0 ? (long long)st.st_size : -1LL);
	unit_report(stat(wal, &st) == 0 && st.st_size < 64 << 10,
	            "re-enabling writes a few pages, not the backlog", detail);
	struct store_job *jobs = calloc(64, sizeof(*jobs));
	size_t n = 0;
	CHECK(jobs && store_claim(s, T0 + 1000, T0 + 30000, 64, NULL, jobs, &n, &err) == HK_OK &&
	      n == 64, "its deliveries are claimable at once");
	for (size_t i = 0; i < n; i++)
		store_job_clear(&jobs[i]);
	free(jobs);
	store_endpoint_clear(&out);
	store_close(s);
	remove_tmp(path);
}

/* A store_listener wake: counts the calls (on the store's own thread, hence
 * atomic). */
static void count_call(void *arg)
{
	__atomic_add_fetch((unsigned *)arg, 1, __ATOMIC_SEQ_CST);
}

/* Wait up to ms for *count to reach want. */
static bool wait_count(unsigned *count, unsigned want, int ms)
{
	for (int i = 0; i < ms && __atomic_load_n(count, __ATOMIC_SEQ_CST) < want; i += 10)
		usleep(10000);
	return __atomic_load_n(count, __ATOMIC_SEQ_CST) >= want;
}

/* One endpoint's attempts in flight, as the dispatcher reports them. */
struct busy {
	const char *endpoint;
	unsigned n;
};

static unsigned busy_in(const void *arg, const char *endpoint)
{
	const struct busy *b = arg;
	return strcmp(b->endpoint, endpoint) == 0 ? b->n : 0;
}

static void test_breaker_pauses(struct store *s, int64_t org2)
{
	struct store_endpoint ep;
	make_endpoint(s, org2, "[\"*\"]", &ep);
	struct store_publish p[3];
	for (int i = 0; i < 3; i++)
		fill_publish(&p[i], org2, "b", NULL, "{}");
	struct hk_err err;
	store_publish_batch(s, p, 3, &err);
	struct store_job jobs[3];
	size_t n;
	store_claim(s, T0 + 1, T0 + 30000, 2, NULL, jobs, &n, &err);
	CHECK(n == 2, "claim respects its cap");
	struct store_result r[2];
	for (size_t i = 0; i < 2; i++)
		r[i] = (struct store_result){ .delivery_id = jobs[i].delivery_id,
			.endpoint_id = jobs[i].endpoint_id, .lease = jobs[i].lease, .row = jobs[i].row,
			.attempt_number = 1,
			.started_at = T0 + 1, .http_status = 500, .error = "HTTP 500",
			.status = DELIVERY_PENDING, .next_attempt_at = T0 + 2 };
	char paused[2][UUID_STR_LEN];
	size_t np;
	CHECK(store_record(s, r, 2, 2, paused, &np, &err) == HK_OK && np == 1 &&
	      strcmp(paused[0], ep.id) == 0, "the breaker pauses at the threshold");
	for (size_t i = 0; i < 2; i++)
		store_job_clear(&jobs[i]);
	CHECK(store_claim(s, T0 + 100000, T0 + 130000, 3, NULL, jobs, &n, &err) == HK_OK && n == 0,
	      "a paused endpoint's deliveries wait");
	struct store_endpoint_patch on = { .is_active = 1 };
	struct store_endpoint now;
	CHECK(store_endpoint_update(s, org2, ep.id, &on, T0, &now, &err) == HK_OK &&
	      now.consecutive_failures == 0 && now.is_active, "re-enabling resets the counter");
	store_endpoint_clear(&now);
	CHECK(store_claim(s, T0 + 100000, T0 + 130000, 3, NULL, jobs, &n, &err) == HK_OK && n == 3,
	      "re-enabling makes every waiting delivery claimable");
	for (size_t i = 0; i < n; i++)
		store_job_clear(&jobs[i]);
	/* Leases expire; with 1 of a cap of 2 in flight, one more may be claimed. */
	struct busy busy = { .endpoint = ep.id, .n = 1 };
	struct store_claim_room room = { .per_endpoint = 2, .in_flight = busy_in, .arg = &busy };
	CHECK(store_claim(s, T0 + 200000, T0 + 230000, 3, &room, jobs, &n, &err) == HK_OK && n == 1,
	      "claim fills only the room under the per-endpoint cap");
	for (size_t i = 0; i < n; i++)
		store_job_clear(&jobs[i]);
	busy.n = 2;
	CHECK(store_claim(s, T0 + 300000, T0 + 330000, 3, &room, jobs, &n, &err) == HK_OK && n == 0,
	      "claim skips endpoints at their in-flight cap");
}

/* Claim up to 4 at `now`; the first job is kept in *job (cleared first),
 * the rest cleared. Returns how many. */
static size_t claim_one(struct store *s, int64_t now, struct store_job *job)
{
	struct store_job jobs[4];
	size_t n = 0;
	struct hk_err err;
	store_job_clear(job);
	if (store_claim(s, now, now + 30000, 4, NULL, jobs, &n, &err) != HK_OK)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0)
			*job = jobs[0];
		else
			store_job_clear(&jobs[i]);
	}
	return n;
}

static hk_status record_as(struct store *s, const struct store_job *job, bool ok, int64_t retry_at)
{
	struct store_result r = {
		.delivery_id = job->delivery_id, .endpoint_id = job->endpoint_id, .lease = job->lease,
		.row = job->row, .attempt_number = job->attempt_count + 1, .started_at = T0,
		.http_status = ok ? 200 : 500, .error = ok ? NULL : "HTTP 500", .success = ok,
		.status = ok ? DELIVERY_SUCCEEDED : DELIVERY_PENDING, .next_attempt_at = retry_at,
	};
	char paused[1][UUID_STR_LEN];
	size_t np;
	struct hk_err err;
	return store_record(s, &r, 1, 0, paused, &np, &err);
}

/* PostgreSQL: a node learns of another's publish from the NOTIFY that
 * names its endpoints, and claims it at once, not at its next walk of the
 * database (a second away: `other` has just walked, and claimed *job).
 * Until its LISTEN is up, a NOTIFY is missed: publish until one wakes it. */
static void notified_at_once(struct store *s, struct store *other, int64_t org,
                             const struct store_job *job)
{
	unsigned woken = 0;
	struct hk_err err;
	/* Done, and a claim that finds nothing more: `other` now knows of
	 * nothing due for the endpoint. The claims run at the wall clock's
	 * now, as note_due lowers to it (T0 lies in the past). */
	struct store_job got = { 0 };
	CHECK(record_as(other, job, true, 0) == HK_OK && claim_one(other, tu_now_ms(), &got) == 0,
	      "the second node has nothing left to claim");
	struct store_listener on = { .wake = count_call, .arg = &woken };
	CHECK(store_listen(other, &on, &err) == HK_OK, "the second node listens");
	struct store_publish p;
	for (int i = 0; i < 25 && !woken; i++) {
		fill_publish(&p, org, "due", NULL, "{}");
		store_publish_batch(s, &p, 1, &err);
		wait_count(&woken, 1, 200);
	}
	CHECK(woken && claim_one(other, tu_now_ms(), &got) >= 1,
	      "and claims another node's publish as soon as its NOTIFY comes");
	store_job_clear(&got);
	store_unlisten(other);
}

/* A claim visits only the endpoints it knows to have something due
 * (duemap.h), learnt once from the database and then from each write that
 * makes a delivery claimable. Each such write is claimed from at once,
 * well before the next walk of the database would find it. On SQLite (pg
 * NULL) in a file of its own; on PostgreSQL in the empty database pg. */
static void test_every_write_is_claimable(const char *pg)
{
	char path[256];
	int64_t org;
	struct hk_err err;
	struct store *s = NULL;
	if (!pg)
		s = open_with_org("due", path, sizeof(path), NULL, &org);
	else if (store_open(pg, NULL, &s, &err) != HK_OK ||
	         store_org_create(s, "due", "due", T0, &org, &err) != HK_OK) {
		fprintf(stderr, "%s: %s\n", pg, err.msg);
		exit(1);
	}
	struct store_endpoint ep, out;
	make_endpoint(s, org, "[\"*\"]", &ep);
	struct store_job job = { 0 };
	CHECK(claim_one(s, T0 + 1, &job) == 0, "nothing is due on a new store");
	struct store_publish p;
	fill_publish(&p, org, "due", NULL, "{}");
	store_publish_batch(s, &p, 1, &err);
	CHECK(claim_one(s, T0 + 10, &job) == 1, "a published delivery is claimed at once");
	CHECK(record_as(s, &job, false, T0 + 5000) == HK_OK && claim_one(s, T0 + 20, &job) == 0,
	      "a failed attempt's retry is not claimed before it is due");
	CHECK(claim_one(s, T0 + 5000, &job) == 1, "and is when it is");
	struct store_lease back = { .lease = job.lease };
	memcpy(back.delivery_id, job.delivery_id, UUID_STR_LEN);
	CHECK(store_unclaim(s, &back, 1, T0 + 5001, &err) == HK_OK &&
	      claim_one(s, T0 + 5002, &job) == 1, "a delivery given back is claimed again at once");
	char id[UUID_STR_LEN];
	memcpy(id, job.delivery_id, UUID_STR_LEN);
	CHECK(record_as(s, &job, true, 0) == HK_OK && claim_one(s, T0 + 6000, &job) == 0,
	      "a delivered one is done");
	CHECK(store_delivery_retry(s, org, id, T0 + 6001, &err) == HK_OK &&
	      claim_one(s, T0 + 6002, &job) == 1, "a manual retry is claimed at once");
	record_as(s, &job, true, 0);
	struct store_endpoint_patch off = { .is_active = 0 }, on = { .is_active = 1 };
	store_endpoint_update(s, org, ep.id, &off, T0, &out, &err);
	store_endpoint_clear(&out);
	fill_publish(&p, org, "due", NULL, "{}");
	store_publish_batch(s, &p, 1, &err);
	CHECK(claim_one(s, T0 + 7000, &job) == 0, "a paused endpoint's delivery waits");
	store_endpoint_update(s, org, ep.id, &on, T0, &out, &err);
	store_endpoint_clear(&out);
	struct store_job got[4];
	size_t n = 0;
	CHECK(store_claim(s, T0 + 7001, T0 + 37001, 4, NULL, got, &n, &err) == HK_OK && n == 1,
	      "and is claimed once the endpoint is enabled again");
	job = got[0];
	record_as(s, &job, true, 0);
	/* A second store on the file is another process to SQLite's backend,
	 * another node to PostgreSQL's (without the NOTIFY listener that the
	 * dispatcher starts): it sees the first one's writes only by walking
	 * the database. */
	struct store *other = NULL;
	CHECK(store_open(pg ? pg : path, NULL, &other, &err) == HK_OK &&
	      claim_one(other, T0 + 8000, &job) == 0, "a second store on the file finds nothing due");
	fill_publish(&p, org, "due", NULL, "{}");
	store_publish_batch(s, &p, 1, &err);
	usleep(1100 * 1000);
	CHECK(other && claim_one(other, T0 + 8001, &job) == 1,
	      "it claims what the first published within a second");
	if (pg && other)
		notified_at_once(s, other, org, &job);
	store_job_clear(&job);
	if (other)
		store_close(other);
	store_close(s);
	if (!pg)
		remove_tmp(path);
}

/* One record batch with attempts of more endpoints than a batch used to
 * fold (256): it failed as "too many endpoints", and the dispatcher retried
 * it forever, delivering nothing more. */
static void test_record_across_many_endpoints(void)
{
	enum { EPS = 300 };
	char path[256];
	int64_t org;
	struct store *s = open_with_org("wide", path, sizeof(path), NULL, &org);
	struct hk_err err;
	struct store_endpoint ep;
	for (int i = 0; i < EPS; i++)
		make_endpoint(s, org, "[\"*\"]", &ep);
	struct store_publish p;
	fill_publish(&p, org, "wide", NULL, "{}");
	CHECK(store_publish_batch(s, &p, 1, &err) == HK_OK && p.deliveries == EPS,
	      "one event fans out to 300 endpoints");
	struct store_job *jobs = calloc(EPS, sizeof(*jobs));
	struct store_result *r = calloc(EPS, sizeof(*r));
	char(*paused)[UUID_STR_LEN] = calloc(EPS, UUID_STR_LEN);
	size_t n = 0, np = 0;
	CHECK(jobs && r && paused && store_claim(s, T0 + 1, T0 + 30000, EPS, NULL, jobs, &n, &err) == HK_OK &&
	      n == EPS, "all 300 claimed");
	for (size_t i = 0; i < n; i++)
		r[i] = (struct store_result){ .delivery_id = jobs[i].delivery_id,
			.endpoint_id = jobs[i].endpoint_id, .lease = jobs[i].lease, .row = jobs[i].row,
			.attempt_number = 1, .started_at = T0 + 1, .http_status = 500, .error = "HTTP 500",
			.status = DELIVERY_PENDING, .next_attempt_at = T0 + 60000 };
	CHECK(store_record(s, r, n, 2, paused, &np, &err) == HK_OK && np == 0,
	      "their attempts are recorded in one batch");
	int counted = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_endpoint got;
		if (store_endpoint_get(s, org, jobs[i].endpoint_id, &got, &err) == HK_OK)
			counted += got.consecutive_failures == 1;
		store_endpoint_clear(&got);
		store_job_clear(&jobs[i]);
	}
	CHECK_INT(counted, EPS, "each endpoint's failure counted once");
	free(jobs);
	free(r);
	free(paused);
	store_close(s);
	remove_tmp(path);
}

static void test_stats(struct store *s, int64_t org3, long attempts)
{
	struct store_endpoint ep;
	make_endpoint(s, org3, "[\"*\"]", &ep);
	struct hk_err err;
	enum { SET = 1000 };
	struct store_publish *p = calloc(SET, sizeof(*p));
	int64_t day0 = T0 - T0 % 86400000;
	for (int i = 0; i < SET; i++) {
		fill_publish(&p[i], org3, "st", NULL, "{}");
		p[i].created_at = day0 - 1000;
	}
	CHECK(store_publish_batch(s, p, SET, &err) == HK_OK, "1000 deliveries to seed attempts on");
	free(p);
	long ok = 0;
	int64_t t = tu_mono_ms();
	seed_attempts(s, attempts, day0, &ok);
	printf("# seeded %ld attempts in %lld ms\n", attempts, (long long)(tu_mono_ms() - t));
	struct store_stat *st;
	size_t n;
	t = tu_mono_ms();
	CHECK(store_stats(s, ep.id, day0, day0 + 86400000, 3600000, &st, &n, &err) == HK_OK,
	      "stats over the day");
	int64_t ms = tu_mono_ms() - t;
	int64_t sum_ok = 0, sum_fail = 0;
	bool aligned = true;
	for (size_t i = 0; i < n; i++) {
		sum_ok += st[i].succeeded;
		sum_fail += st[i].failed;
		aligned = aligned && st[i].bucket_start % 3600000 == 0;
	}
	printf("# stats over %ld attempts: %zu buckets in %lld ms\n", attempts, n, (long long)ms);
	CHECK(n == 24 && aligned, "24 aligned hourly buckets");
	CHECK(sum_ok == ok && sum_fail == attempts - ok, "bucket counts add up to the attempts made");
	free(st);
}

int main(int argc, char **argv)
{
	/* unit_store --pg URL: the claim tests on PostgreSQL, in the empty
	 * database URL (tests/test_store_pg.py makes one). */
	if (argc > 2 && strcmp(argv[1], "--pg") == 0) {
		test_every_write_is_claimable(argv[2]);
		return unit_done();
	}
	long big = argc > 1 ? atol(argv[1]) : 1000000;
	char path[256];
	struct store *s = open_tmp("store", path, sizeof(path), NULL);
	struct hk_err err;
	int64_t org, org2, org3;
	CHECK(store_org_create(s, "o1", "O1", T0, &org, &err) == HK_OK, "org created");
	CHECK(store_org_create(s, "o1", "O1", T0, &org2, &err) == HK_ECONFLICT, "slug is unique");
	store_org_create(s, "o2", "O2", T0, &org2, &err);
	store_org_create(s, "o3", "O3", T0, &org3, &err);
	test_publish_and_idempotency(s, org);
	test_lease_fencing(s, org);
	test_breaker_pauses(s, org2);
	test_unclaim();
	test_every_write_is_claimable(NULL);
	test_record_across_many_endpoints();
	test_claim_secrets();
	test_reenable_writes_the_endpoint_alone();
	test_stats(s, org3, big);
	store_close(s);
	remove_tmp(path);
	return unit_done();
}
