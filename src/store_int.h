/*
 * store_int: what a store backend provides. Only store.c and the backends
 * (store_sqlite.c, later store_pg.c) include this file.
 *
 * A backend is a const struct store_ops; its store handle embeds struct store
 * as its first member, so store.c can dispatch without knowing the backend.
 * Each operation has exactly the contract of its wrapper in store.h.
 */
#ifndef HK_STORE_INT_H
#define HK_STORE_INT_H

#include "duemap.h"
#include "store.h"

struct store_ops {
	const char *name;
	bool one_writer; /* see store_one_writer */
	/* Claims db when it is this backend's kind of name (a path, a URL scheme). */
	int (*accepts)(const char *db);
	hk_status (*open)(const char *db, const struct store_options *opt, struct store **out,
	                  struct hk_err *err);
	void (*close)(struct store *s);
	hk_status (*schema_version)(struct store *s, int *version, struct hk_err *err);
	hk_status (*org_create)(struct store *s, const char *slug, const char *name, int64_t now, int64_t *org_id, struct hk_err *err);
	hk_status (*org_get)(struct store *s, const char *slug, struct store_org *out, struct hk_err *err);
	hk_status (*key_create)(struct store *s, int64_t org_id, const unsigned char hash[32], enum store_role role, int64_t now, struct hk_err *err);
	hk_status (*key_lookup)(struct store *s, const unsigned char hash[32], struct store_auth *out, struct hk_err *err);
	hk_status (*bootstrap)(struct store *s, const unsigned char admin_hash[32], int64_t now, bool *created, struct hk_err *err);
	hk_status (*endpoint_create)(struct store *s, const struct store_endpoint *ep, struct hk_err *err);
	hk_status (*endpoint_get)(struct store *s, int64_t org_id, const char *id, struct store_endpoint *out, struct hk_err *err);
	hk_status (*endpoint_primary)(struct store *s, int64_t org_id, struct store_endpoint *out, struct hk_err *err);
	hk_status (*endpoint_list)(struct store *s, int64_t org_id, struct store_endpoint **out, size_t *n, struct hk_err *err);
	hk_status (*endpoint_update)(struct store *s, int64_t org_id, const char *id, const struct store_endpoint_patch *p, int64_t now, struct store_endpoint *out, struct hk_err *err);
	hk_status (*endpoint_delete)(struct store *s, int64_t org_id, const char *id, struct hk_err *err);
	hk_status (*endpoint_set_secret)(struct store *s, int64_t org_id, const char *id, const char *secret, int *version, struct hk_err *err);
	hk_status (*publish_batch)(struct store *s, struct store_publish *items, size_t n, struct hk_err *err);
	hk_status (*delivery_list)(struct store *s, const struct store_delivery_filter *f, struct store_delivery **out, size_t *n, int64_t *total, struct hk_err *err);
	hk_status (*delivery_get)(struct store *s, int64_t org_id, const char *id, struct store_delivery *out, char **body, struct store_attempt **attempts, size_t *nattempts, struct hk_err *err);
	hk_status (*delivery_retry)(struct store *s, int64_t org_id, const char *id, int64_t now, struct hk_err *err);
	hk_status (*claim)(struct store *s, int64_t now, int64_t lease_until, unsigned cap, const struct store_claim_room *room, struct store_job *jobs, size_t *n, struct hk_err *err);
	hk_status (*next_due)(struct store *s, int64_t *when, struct hk_err *err);
	hk_status (*record)(struct store *s, struct store_result *r, size_t n, int breaker_threshold, char (*paused)[UUID_STR_LEN], size_t *npaused, struct hk_err *err);
	hk_status (*release_leases)(struct store *s, int64_t now, struct hk_err *err);
	hk_status (*unclaim)(struct store *s, const struct store_lease *l, size_t n, int64_t now, struct hk_err *err);
	hk_status (*stats)(struct store *s, const char *endpoint_id, int64_t start, int64_t end, int64_t bucket_ms, struct store_stat **out, size_t *n, struct hk_err *err);
	/* NULL when nothing happens outside this process's calls. */
	hk_status (*listen)(struct store *s, const struct store_listener *l, struct hk_err *err);
};

struct store {
	const struct store_ops *ops;
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* ---- what every backend does the same way (store.c) ---------------------- */

/* store_next_due's answer from a backend's due times: 0 when nothing is
 * pending, else the earliest, at least 1 (a released endpoint's is
 * INT64_MIN, which would read as "nothing"). */
int64_t store_due_first(struct duemap *due);

/* How many more deliveries of endpoint may be claimed under room, at most
 * `most`. */
unsigned store_room_left(const struct store_claim_room *room, const char *endpoint, unsigned most);

/* Fill job's url, secret and body into one allocation (job->mem).
 * -1 when out of memory. */
int store_job_fill(struct store_job *job, const char *url, size_t url_len, const char *secret,
                   const char *body, size_t body_len);

/* The secrets opened during one claim. A claim's rows share a few
 * endpoints, and opening a sealed secret (AES-GCM, with OpenSSL's cipher
 * lookup) cost more than the rest of a row: about a sixth of the claimer's
 * time. Scoped to one claim, so no opened secret outlives the claim that
 * needed it; store_memo_clear wipes them. Zero-initialize. */
#define STORE_MEMO_MAX 16
struct store_memo {
	size_t n, next;
	struct {
		char endpoint[UUID_STR_LEN];
		char *stored; /* the sealed value, as the row holds it */
		char *plain;
	} e[STORE_MEMO_MAX];
};

/* The secret opened earlier in this claim for endpoint's stored value, or NULL. */
const char *store_memo_find(const struct store_memo *m, const char *endpoint, const char *stored);
/* Keep plain (malloc'd; taken over, freed on failure) as the opening of
 * stored; returns it, or NULL when plain is NULL or out of memory. */
const char *store_memo_keep(struct store_memo *m, const char *endpoint, const char *stored,
                            char *plain);
/* Wipe and free what the claim opened. */
void store_memo_clear(struct store_memo *m);

/* Does an endpoint's event_types (a parsed JSON array) take event_type? */
struct json_t;
bool store_subscribes(const struct json_t *types, const char *event_type);

/* The rollup counts of one batch of results, folded by endpoint and minute,
 * so a batch writes one upsert per pair, not one per attempt. */
#define STORE_ROLLUP_MAX 64
struct store_rollup {
	size_t n;
	struct {
		const char *endpoint;
		int64_t minute;
		int succeeded, failed;
	} e[STORE_ROLLUP_MAX];
};

/* Count r in ru. false when ru is full: flush it (and set n to 0) first. */
bool store_rollup_add(struct store_rollup *ru, const struct store_result *r);

/* The breaker's change of one batch, folded per endpoint in batch order:
 * after the last success the counter is `add`, else it grows by `add`.
 * Sorted by endpoint, so concurrent writers lock endpoint rows in one order. */
struct store_breaker {
	size_t n;
	struct store_breaker_change {
		const char *endpoint; /* points into the results folded */
		bool reset;
		int add;
	} *e;
};

/* Fold the results of a batch that were not fenced off into b, any number
 * of endpoints (a fixed 256 once failed a batch for good). false when out
 * of memory. Free with store_breaker_clear. */
bool store_breaker_fold(struct store_breaker *b, const struct store_result *r, size_t n);
void store_breaker_clear(struct store_breaker *b);

#endif
