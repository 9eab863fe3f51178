/*
 * store: the backend-neutral wrappers of store.h, and the helpers that free
 * what the store hands out.
 *
 * Every wrapper is one indirect call through the backend's ops; they are also
 * the single place to inject faults in tests, as SQLite's VFS wrappers are.
 */
#include "store_int.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static const struct store_ops *const backends[] = {
	&store_pg_ops,
	&store_sqlite_ops,
};

hk_status store_open(const char *db, const struct store_options *opt, struct store **out,
                     struct hk_err *err)
{
	*out = NULL;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i]->accepts(db))
			return backends[i]->open(db, opt, out, err);
	return hk_fail(err, HK_EINVALID, "unsupported_store", "no store backend accepts --db %s",
	               strncmp(db, "postgres", 8) == 0 ? "postgres://..." : db);
}

/* ---- what every backend does the same way -------------------------------- */

int64_t store_due_first(struct duemap *due)
{
	int64_t first = duemap_first(due);
	return first == DUEMAP_NONE ? 0 : first < 1 ? 1 : first;
}

unsigned store_room_left(const struct store_claim_room *room, const char *endpoint, unsigned most)
{
	if (!room->per_endpoint)
		return most;
	unsigned used = room->in_flight ? room->in_flight(room->arg, endpoint) : 0;
	unsigned left = used < room->per_endpoint ? room->per_endpoint - used : 0;
	return left < most ? left : most;
}

int store_job_fill(struct store_job *j, const char *url, size_t ul, const char *sec,
                   const char *body, size_t bl)
{
	size_t sl = strlen(sec);
	if (!(j->mem = malloc(ul + sl + bl + 3)))
		return -1;
	memcpy(j->mem, url, ul);
	j->mem[ul] = '\0';
	memcpy(j->mem + ul + 1, sec, sl + 1);
	memcpy(j->mem + ul + sl + 2, body, bl);
	j->mem[ul + sl + 2 + bl] = '\0';
	j->url = j->mem;
	j->secret = j->mem + ul + 1;
	j->body = j->mem + ul + sl + 2;
	j->body_len = bl;
	return 0;
}

const char *store_memo_find(const struct store_memo *m, const char *endpoint, const char *stored)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->e[i].endpoint, endpoint) == 0 && strcmp(m->e[i].stored, stored) == 0)
			return m->e[i].plain;
	return NULL;
}

static void memo_wipe(char **plain, char **stored)
{
	if (*plain)
		OPENSSL_cleanse(*plain, strlen(*plain));
	free(*plain);
	free(*stored);
	*plain = *stored = NULL;
}

const char *store_memo_keep(struct store_memo *m, const char *endpoint, const char *stored,
                            char *plain)
{
	char *copy = plain ? strdup(stored) : NULL;
	if (!copy) {
		memo_wipe(&plain, &copy);
		return NULL;
	}
	/* Full: the oldest entry makes room (a claim over more endpoints than
	 * the memo holds opens some secrets more than once, no worse than before). */
	size_t i = m->n < STORE_MEMO_MAX ? m->n++ : m->next++ % STORE_MEMO_MAX;
	memo_wipe(&m->e[i].plain, &m->e[i].stored);
	memcpy(m->e[i].endpoint, endpoint, UUID_STR_LEN);
	m->e[i].stored = copy;
	m->e[i].plain = plain;
	return plain;
}

void store_memo_clear(struct store_memo *m)
{
	for (size_t i = 0; i < m->n; i++)
		memo_wipe(&m->e[i].plain, &m->e[i].stored);
	m->n = m->next = 0;
}

bool store_subscribes(const json_t *types, const char *event_type)
{
	size_t i;
	json_t *v;
	json_array_foreach(types, i, v) {
		const char *t = json_string_value(v);
		if (t && (strcmp(t, "*") == 0 || strcmp(t, event_type) == 0))
			return true;
	}
	return false;
}

bool store_rollup_add(struct store_rollup *ru, const struct store_result *r)
{
	int64_t minute = r->started_at / 60000;
	size_t i = 0;
	while (i < ru->n && (ru->e[i].minute != minute || strcmp(ru->e[i].endpoint, r->endpoint_id) != 0))
		i++;
	if (i == ru->n) {
		if (ru->n == STORE_ROLLUP_MAX)
			return false;
		i = ru->n++;
		ru->e[i].endpoint = r->endpoint_id;
		ru->e[i].minute = minute;
		ru->e[i].succeeded = ru->e[i].failed = 0;
	}
	if (r->success)
		ru->e[i].succeeded++;
	else
		ru->e[i].failed++;
	return true;
}

/* A result by endpoint, then by its place in the batch. */
struct fold_item {
	const char *endpoint;
	size_t i;
};

static int cmp_fold(const void *a, const void *b)
{
	const struct fold_item *x = a, *y = b;
	int c = strcmp(x->endpoint, y->endpoint);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

bool store_breaker_fold(struct store_breaker *b, const struct store_result *r, size_t n)
{
	b->n = 0;
	b->e = NULL;
	struct fold_item *items = malloc((n ? n : 1) * sizeof(*items));
	if (!items)
		return false;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!r[i].fenced)
			items[k++] = (struct fold_item){ r[i].endpoint_id, i };
	qsort(items, k, sizeof(*items), cmp_fold);
	if (k && !(b->e = malloc(k * sizeof(*b->e)))) {
		free(items);
		return false;
	}
	for (size_t j = 0; j < k; j++) {
		if (j == 0 || strcmp(items[j].endpoint, items[j - 1].endpoint) != 0)
			b->e[b->n++] = (struct store_breaker_change){ .endpoint = items[j].endpoint };
		struct store_breaker_change *e = &b->e[b->n - 1];
		if (r[items[j].i].success) {
			e->reset = true;
			e->add = 0;
		} else {
			e->add++;
		}
	}
	free(items);
	return true;
}

void store_breaker_clear(struct store_breaker *b)
{
	free(b->e);
	b->e = NULL;
	b->n = 0;
}

const char *store_backend(const struct store *s)
{
	return s->ops->name;
}

bool store_one_writer(const struct store *s)
{
	return s->ops->one_writer;
}

void store_endpoint_clear(struct store_endpoint *ep)
{
	free(ep->url);
	free(ep->description);
	free(ep->event_types);
	free(ep->secret);
	memset(ep, 0, sizeof(*ep));
}

void store_endpoint_free_array(struct store_endpoint *eps, size_t n)
{
	for (size_t i = 0; eps && i < n; i++)
		store_endpoint_clear(&eps[i]);
	free(eps);
}

void store_attempt_free_array(struct store_attempt *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		free(a[i].error);
		free(a[i].response_body);
	}
	free(a);
}

void store_job_clear(struct store_job *job)
{
	free(job->mem);
	memset(job, 0, sizeof(*job));
}

void store_close(struct store *s)
{
	s->ops->close(s);
}

hk_status store_schema_version(struct store *s, int *version, struct hk_err *err)
{
	return s->ops->schema_version(s, version, err);
}

hk_status store_org_create(struct store *s, const char *slug, const char *name, int64_t now, int64_t *org_id, struct hk_err *err)
{
	return s->ops->org_create(s, slug, name, now, org_id, err);
}

hk_status store_org_get(struct store *s, const char *slug, struct store_org *out, struct hk_err *err)
{
	return s->ops->org_get(s, slug, out, err);
}

hk_status store_key_create(struct store *s, int64_t org_id, const unsigned char hash[32], enum store_role role, int64_t now, struct hk_err *err)
{
	return s->ops->key_create(s, org_id, hash, role, now, err);
}

hk_status store_key_lookup(struct store *s, const unsigned char hash[32], struct store_auth *out, struct hk_err *err)
{
	return s->ops->key_lookup(s, hash, out, err);
}

hk_status store_bootstrap(struct store *s, const unsigned char admin_hash[32], int64_t now, bool *created, struct hk_err *err)
{
	return s->ops->bootstrap(s, admin_hash, now, created, err);
}

hk_status store_endpoint_create(struct store *s, const struct store_endpoint *ep, struct hk_err *err)
{
	return s->ops->endpoint_create(s, ep, err);
}

hk_status store_endpoint_get(struct store *s, int64_t org_id, const char *id, struct store_endpoint *out, struct hk_err *err)
{
	return s->ops->endpoint_get(s, org_id, id, out, err);
}

hk_status store_endpoint_primary(struct store *s, int64_t org_id, struct store_endpoint *out, struct hk_err *err)
{
	return s->ops->endpoint_primary(s, org_id, out, err);
}

hk_status store_endpoint_list(struct store *s, int64_t org_id, struct store_endpoint **out, size_t *n, struct hk_err *err)
{
	return s->ops->endpoint_list(s, org_id, out, n, err);
}

hk_status store_endpoint_update(struct store *s, int64_t org_id, const char *id, const struct store_endpoint_patch *p, int64_t now, struct store_endpoint *out, struct hk_err *err)
{
	return s->ops->endpoint_update(s, org_id, id, p, now, out, err);
}

hk_status store_endpoint_delete(struct store *s, int64_t org_id, const char *id, struct hk_err *err)
{
	return s->ops->endpoint_delete(s, org_id, id, err);
}

hk_status store_endpoint_set_secret(struct store *s, int64_t org_id, const char *id, const char *secret, int *version, struct hk_err *err)
{
	return s->ops->endpoint_set_secret(s, org_id, id, secret, version, err);
}

hk_status store_publish_batch(struct store *s, struct store_publish *items, size_t n, struct hk_err *err)
{
	return s->ops->publish_batch(s, items, n, err);
}

hk_status store_delivery_list(struct store *s, const struct store_delivery_filter *f, struct store_delivery **out, size_t *n, int64_t *total, struct hk_err *err)
{
	return s->ops->delivery_list(s, f, out, n, total, err);
}

hk_status store_delivery_get(struct store *s, int64_t org_id, const char *id, struct store_delivery *out, char **body, struct store_attempt **attempts, size_t *nattempts, struct hk_err *err)
{
	return s->ops->delivery_get(s, org_id, id, out, body, attempts, nattempts, err);
}

hk_status store_delivery_retry(struct store *s, int64_t org_id, const char *id, int64_t now, struct hk_err *err)
{
	return s->ops->delivery_retry(s, org_id, id, now, err);
}

hk_status store_claim(struct store *s, int64_t now, int64_t lease_until, unsigned cap, const struct store_claim_room *room, struct store_job *jobs, size_t *n, struct hk_err *err)
{
	return s->ops->claim(s, now, lease_until, cap, room, jobs, n, err);
}

hk_status store_next_due(struct store *s, int64_t *when, struct hk_err *err)
{
	return s->ops->next_due(s, when, err);
}

hk_status store_record(struct store *s, struct store_result *r, size_t n, int breaker_threshold, char (*paused)[UUID_STR_LEN], size_t *npaused, struct hk_err *err)
{
	return s->ops->record(s, r, n, breaker_threshold, paused, npaused, err);
}

hk_status store_release_leases(struct store *s, int64_t now, struct hk_err *err)
{
	return s->ops->release_leases(s, now, err);
}

hk_status store_unclaim(struct store *s, const struct store_lease *l, size_t n, int64_t now,
                        struct hk_err *err)
{
	return n ? s->ops->unclaim(s, l, n, now, err) : HK_OK;
}

hk_status store_listen(struct store *s, const struct store_listener *l, struct hk_err *err)
{
	return s->ops->listen ? s->ops->listen(s, l, err) : HK_OK;
}

void store_unlisten(struct store *s)
{
	if (s->ops->listen)
		s->ops->listen(s, NULL, NULL);
}

hk_status store_stats(struct store *s, const char *endpoint_id, int64_t start, int64_t end, int64_t bucket_ms, struct store_stat **out, size_t *n, struct hk_err *err)
{
	return s->ops->stats(s, endpoint_id, start, end, bucket_ms, out, n, err);
}
