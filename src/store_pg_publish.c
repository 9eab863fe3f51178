/*
 * store_pg_publish: the PostgreSQL backend's group commit (store.h's
 * store_publish_batch), in libpq pipelines. The backend's design notes are
 * at the top of store_pg.c.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

/* ---- publishing ----------------------------------------------------------
 *
 * A batch is written in rounds of two pipelines: the lookups (in the first
 * round also the BEGIN and the endpoints of the batch's orgs), then the
 * inserts. Items that share an idempotency key are answered in batch order,
 * as if published one by one: up to the first of them that publishes, all
 * are judged against the same lookup; the rest wait for the next round,
 * whose lookup finds what that one stored. An item whose event insert found
 * its key taken by another node (and so inserted nothing, its deliveries
 * included) waits for the next round too, which answers it as that node's
 * publish did. A batch without repeated keys takes one round.
 */

/* The endpoints of one org as fan-out needs them, loaded once per batch. */
struct fan_ep {
	char id[UUID_STR_LEN];
	bool active;
	bool due; /* active, and the batch sent a delivery for it (one an idempotency
	           * key then turned away only makes its due time early) */
	json_t *types;
};

struct fan_org {
	int64_t org_id;
	struct fan_ep *eps;
	size_t n;
};

/* What an idempotency key's lookup found: the event that holds the key. */
struct idem_row {
	bool found;
	char id[UUID_STR_LEN];
	char hash[65]; /* its req_hash in hex */
	int fanout;
	int64_t at;
};

/* One item's state across the rounds. */
struct pub_work {
	struct fan_org *org;
	bool pending;                   /* not answered yet */
	bool publish;                   /* inserted in this round */
	const char *stale;              /* with publish: first clear this event's expired key */
	struct idem_row row;            /* the first pending item of a key: its lookup */
	int fanout;
	bool due;                       /* it has a delivery to an active endpoint */
	char delivery_id[UUID_STR_LEN]; /* the last delivery queued */
};

struct pub_batch {
	struct store_publish *items;
	struct pub_work *w;
	size_t n, pending;
	struct store_publish **keyed; /* pending items with a key, by (org, key, index) */
	size_t nkeyed;
	struct fan_org *orgs;
	size_t norgs;
	bool first; /* the first round opens the transaction and loads the orgs */
	bool due;   /* a delivery to an active endpoint was stored: NOTIFY */
};

static struct pub_work *work_of(const struct pub_batch *b, const struct store_publish *it)
{
	return &b->w[it - b->items];
}

static struct fan_org *fan_org_of(struct pub_batch *b, int64_t org_id)
{
	for (size_t i = b->norgs; i-- > 0;) /* newest first: a batch is mostly one org */
		if (b->orgs[i].org_id == org_id)
			return &b->orgs[i];
	b->orgs[b->norgs].org_id = org_id;
	return &b->orgs[b->norgs++];
}

static void pub_free(struct pub_batch *b)
{
	for (size_t i = 0; i < b->norgs; i++) {
		for (size_t j = 0; j < b->orgs[i].n; j++)
			json_decref(b->orgs[i].eps[j].types);
		free(b->orgs[i].eps);
	}
	free(b->orgs);
	free(b->keyed);
	free(b->w);
}

static hk_status pub_init(struct pub_batch *b, struct store_publish *items, size_t n,
                          struct hk_err *err)
{
	*b = (struct pub_batch){ .items = items, .n = n, .first = true };
	b->w = calloc(n + 1, sizeof(*b->w));
	b->keyed = calloc(n + 1, sizeof(*b->keyed));
	b->orgs = calloc(n + 1, sizeof(*b->orgs));
	if (!b->w || !b->keyed || !b->orgs)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		b->w[i].org = fan_org_of(b, items[i].org_id);
		b->w[i].pending = true;
	}
	return HK_OK;
}

static hk_status fan_fill(struct fan_org *o, const PGresult *res, struct hk_err *err)
{
	size_t rows = (size_t)PQntuples(res);
	o->eps = rows ? calloc(rows, sizeof(*o->eps)) : NULL;
	if (rows && !o->eps)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < rows; i++) {
		struct fan_ep *e = &o->eps[o->n++];
		pg_copy(res, (int)i, 0, e->id, sizeof(e->id));
		e->active = pg_int(res, (int)i, 1) != 0;
		e->types = json_loads(PQgetvalue(res, (int)i, 2), 0, NULL);
	}
	return HK_OK;
}

static bool fans_to(const struct store_publish *it, const struct fan_ep *e)
{
	return it->only_endpoint ? strcmp(it->only_endpoint, e->id) == 0
	                         : store_subscribes(e->types, it->event_type);
}

static bool same_key(const struct store_publish *x, const struct store_publish *y)
{
	return x->org_id == y->org_id && strcmp(x->idem_key, y->idem_key) == 0;
}

static int key_order(const void *a, const void *b)
{
	const struct store_publish *x = *(const struct store_publish *const *)a;
	const struct store_publish *y = *(const struct store_publish *const *)b;
	if (x->org_id != y->org_id)
		return x->org_id < y->org_id ? -1 : 1;
	int c = strcmp(x->idem_key, y->idem_key);
	return c ? c : (x > y) - (x < y);
}

/* Does the k-th keyed item come first of its key (and so do the lookup)? */
static bool leads(const struct pub_batch *b, size_t k)
{
	return k == 0 || !same_key(b->keyed[k - 1], b->keyed[k]);
}

/* Reset the pending items' answers and order their keys. */
static void round_start(struct pub_batch *b)
{
	b->nkeyed = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct store_publish *it = &b->items[i];
		if (!b->w[i].pending)
			continue;
		it->status = HK_OK;
		it->replayed = false;
		it->deliveries = 0;
		if (!it->only_endpoint)
			it->delivery_id[0] = '\0';
		memcpy(it->out_event_id, it->event_id, UUID_STR_LEN);
		if (it->idem_key)
			b->keyed[b->nkeyed++] = it;
	}
	qsort(b->keyed, b->nkeyed, sizeof(*b->keyed), key_order);
}

static hk_status lookups_send(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct pub_batch *b = ctx;
	static const struct pg_params none = { 0 };
	hk_status r = b->first ? pg_pipe_send(c, PS_BEGIN, &none, err) : HK_OK;
	for (size_t i = 0; b->first && i < b->norgs && r == HK_OK; i++) {
		struct pg_params p = { 0 };
		pp_int(&p, b->orgs[i].org_id);
		r = pg_pipe_send(c, PS_EP_FANOUT, &p, err);
	}
	for (size_t k = 0; k < b->nkeyed && r == HK_OK; k++) {
		if (!leads(b, k))
			continue;
		struct pg_params p = { 0 };
		pp_int(&p, b->keyed[k]->org_id);
		pp_text(&p, b->keyed[k]->idem_key);
		r = pg_pipe_send(c, PS_EV_IDEM, &p, err);
	}
	return r;
}

static void idem_row_read(const PGresult *res, struct idem_row *row)
{
	row->found = PQntuples(res) > 0;
	if (!row->found)
		return;
	pg_copy(res, 0, 0, row->id, sizeof(row->id));
	pg_copy(res, 0, 1, row->hash, sizeof(row->hash));
	row->fanout = (int)pg_int(res, 0, 2);
	row->at = pg_int(res, 0, 3);
}

static hk_status lookups_read(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct pub_batch *b = ctx;
	hk_status r = b->first ? pg_pipe_do(c, PS_BEGIN, NULL, err) : HK_OK;
	for (size_t i = 0; b->first && i < b->norgs && r == HK_OK; i++) {
		PGresult *res = pg_pipe_next(c, PS_EP_FANOUT, err);
		r = res ? fan_fill(&b->orgs[i], res, err) : err->status;
		PQclear(res);
	}
	for (size_t k = 0; k < b->nkeyed && r == HK_OK; k++) {
		if (!leads(b, k))
			continue;
		PGresult *res = pg_pipe_next(c, PS_EV_IDEM, err);
		if (!res)
			return err->status;
		idem_row_read(res, &work_of(b, b->keyed[k])->row);
		PQclear(res);
	}
	return r;
}

enum idem_verdict { IDEM_NEW, IDEM_STALE, IDEM_ANSWERED };

/* Answer an item from the event that holds its key (replay or conflict).
 * IDEM_STALE: that key has expired; clear it, then publish. */
static enum idem_verdict idem_judge(const struct idem_row *row, struct store_publish *it)
{
	if (!row->found)
		return IDEM_NEW;
	if (row->at + it->idem_window_ms <= it->created_at)
		return IDEM_STALE;
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", it->req_hash[i]);
	if (strcmp(row->hash, hex) != 0) {
		it->status = HK_ECONFLICT;
		return IDEM_ANSWERED;
	}
	it->replayed = true;
	memcpy(it->out_event_id, row->id, sizeof(row->id));
	it->deliveries = row->fanout;
	return IDEM_ANSWERED;
}

/* Choose the pending items that publish in this round; returns how many. */
static size_t round_plan(struct pub_batch *b)
{
	size_t publishing = 0;
	for (size_t i = 0; i < b->n; i++) {
		b->w[i].publish = b->w[i].pending && !b->items[i].idem_key;
		publishing += b->w[i].publish;
	}
	const struct idem_row *row = NULL;
	bool closed = false; /* one item of this key publishes: the others wait */
	for (size_t k = 0; k < b->nkeyed; k++) {
		struct pub_work *w = work_of(b, b->keyed[k]);
		if (leads(b, k)) {
			row = &w->row;
			closed = false;
		}
		enum idem_verdict v = closed ? IDEM_NEW : idem_judge(row, b->keyed[k]);
		if (closed || v == IDEM_ANSWERED) {
			w->pending = closed;
			continue;
		}
		w->publish = closed = true;
		w->stale = v == IDEM_STALE ? row->id : NULL;
		publishing++;
	}
	return publishing;
}

static hk_status event_send(struct pg_conn *c, const struct store_publish *it, int fanout,
                            struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, it->event_id);
	pp_int(&p, it->org_id);
	pp_text(&p, it->event_type);
	pp_bin(&p, it->body, it->body_len); /* text's binary form is its bytes */
	pp_int(&p, it->created_at);
	pp_text(&p, it->idem_key);
	if (it->idem_key)
		pp_bin(&p, it->req_hash, 32);
	else
		pp_null(&p);
	pp_int(&p, fanout);
	return pg_pipe_send(c, PS_EV_INSERT, &p, err);
}

static hk_status delivery_send(struct pg_conn *c, const struct store_publish *it,
                               const struct fan_ep *e, char *id_out, struct hk_err *err)
{
	bool test = it->only_endpoint != NULL;
	if (test && it->delivery_id[0])
		memcpy(id_out, it->delivery_id, UUID_STR_LEN);
	else
		uuid_v7(id_out);
	struct pg_params p = { 0 };
	pp_text(&p, id_out);
	pp_text(&p, e->id);
	pp_text(&p, it->event_id);
	pp_text(&p, it->event_type);
	pp_int(&p, it->created_at);
	pp_int(&p, it->created_at);
	pp_int(&p, test);
	pp_int(&p, test);
	return pg_pipe_send(c, PS_DL_INSERT, &p, err);
}

/* Queue one item: the clear of an expired key, its event, its deliveries. */
static hk_status item_send(struct pg_conn *c, const struct store_publish *it, struct pub_work *w,
                           struct hk_err *err)
{
	struct fan_org *o = w->org;
	w->fanout = 0;
	w->due = false;
	for (size_t i = 0; i < o->n; i++)
		w->fanout += fans_to(it, &o->eps[i]);
	struct pg_params p = { 0 };
	pp_text(&p, w->stale);
	hk_status r = w->stale ? pg_pipe_send(c, PS_EV_IDEM_CLEAR, &p, err) : HK_OK;
	if (r == HK_OK)
		r = event_send(c, it, w->fanout, err);
	for (size_t i = 0; i < o->n && r == HK_OK; i++) {
		if (!fans_to(it, &o->eps[i]))
			continue;
		r = delivery_send(c, it, &o->eps[i], w->delivery_id, err);
		w->due |= o->eps[i].active;
		o->eps[i].due |= o->eps[i].active;
	}
	return r;
}

static hk_status inserts_send(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct pub_batch *b = ctx;
	hk_status r = HK_OK;
	for (size_t i = 0; i < b->n && r == HK_OK; i++)
		if (b->w[i].publish)
			r = item_send(c, &b->items[i], &b->w[i], err);
	return r;
}

/* Take one item's results, in item_send's order. When another node took its
 * key first, nothing was inserted and the item stays pending. */
static hk_status item_read(struct pg_conn *c, struct store_publish *it, struct pub_work *w,
                           struct hk_err *err)
{
	long inserted = 0;
	hk_status r = w->stale ? pg_pipe_do(c, PS_EV_IDEM_CLEAR, NULL, err) : HK_OK;
	if (r == HK_OK)
		r = pg_pipe_do(c, PS_EV_INSERT, &inserted, err);
	for (int i = 0; i < w->fanout && r == HK_OK; i++)
		r = pg_pipe_do(c, PS_DL_INSERT, NULL, err);
	if (r != HK_OK || inserted == 0)
		return r;
	w->pending = false;
	it->deliveries = w->fanout;
	if (w->fanout)
		memcpy(it->delivery_id, w->delivery_id, UUID_STR_LEN);
	return HK_OK;
}

static hk_status inserts_read(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct pub_batch *b = ctx;
	hk_status r = HK_OK;
	for (size_t i = 0; i < b->n && r == HK_OK; i++) {
		if (!b->w[i].publish)
			continue;
		r = item_read(c, &b->items[i], &b->w[i], err);
		b->due |= !b->w[i].pending && b->w[i].due;
	}
	return r;
}

static hk_status publish_round(struct pg_conn *c, struct pub_batch *b, struct hk_err *err)
{
	static const enum pg_stmt look[] = { PS_BEGIN, PS_EP_FANOUT, PS_EV_IDEM };
	static const enum pg_stmt put[] = { PS_EV_IDEM_CLEAR, PS_EV_INSERT, PS_DL_INSERT };
	round_start(b);
	hk_status r = HK_OK;
	if (b->first || b->nkeyed)
		r = pg_pipeline(c, look, 3, lookups_send, lookups_read, b, err);
	b->first = false;
	if (r == HK_OK && round_plan(b) > 0)
		r = pg_pipeline(c, put, 3, inserts_send, inserts_read, b, err);
	b->pending = 0;
	for (size_t i = 0; i < b->n; i++)
		b->pending += b->w[i].pending;
	return r;
}

/* The commit of a batch that stored deliveries due, with a NOTIFY naming
 * their endpoints (UUIDs from the database: nothing to quote), or a plain
 * one, which has every node walk, when they are too many for a payload. */
#define DUE_SQL_MAX (64 + PG_DUE_MAX_IDS * UUID_STR_LEN)
static const char *due_sql(const struct pub_batch *b, char sql[DUE_SQL_MAX])
{
	size_t len = (size_t)sprintf(sql, "NOTIFY " PG_CHANNEL ", '" PG_DUE);
	size_t ids = 0;
	for (size_t o = 0; o < b->norgs; o++)
		for (size_t i = 0; i < b->orgs[o].n; i++) {
			if (!b->orgs[o].eps[i].due)
				continue;
			if (++ids > PG_DUE_MAX_IDS)
				return "NOTIFY " PG_CHANNEL "; COMMIT";
			len += (size_t)sprintf(sql + len, "%s%s", ids > 1 ? " " : "", b->orgs[o].eps[i].id);
		}
	strcpy(sql + len, "'; COMMIT");
	return sql;
}

/* After the commit: this node may claim them at once. */
static void due_lower(struct pg_store *ps, const struct pub_batch *b)
{
	int64_t at = INT64_MAX;
	for (size_t i = 0; i < b->n; i++)
		if (!b->w[i].pending && b->items[i].created_at < at)
			at = b->items[i].created_at;
	for (size_t o = 0; o < b->norgs; o++)
		for (size_t i = 0; i < b->orgs[o].n; i++)
			if (b->orgs[o].eps[i].due)
				duemap_lower(ps->due, b->orgs[o].eps[i].id, at);
}

hk_status pg_publish_batch(struct store *s, struct store_publish *items, size_t n,
                           struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pub_batch b;
	hk_status r = pub_init(&b, items, n, err);
	while (r == HK_OK && (b.first || b.pending))
		r = publish_round(c, &b, err);
	/* The NOTIFY is delivered with the commit, to every node that LISTENs. */
	char sql[DUE_SQL_MAX];
	if (r == HK_OK)
		r = pg_exec(c, b.due ? due_sql(&b, sql) : "COMMIT", err);
	if (r != HK_OK)
		pg_tx_rollback(c);
	else if (b.due)
		due_lower((struct pg_store *)s, &b);
	pub_free(&b);
	return r;
}

