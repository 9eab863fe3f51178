/*
 * unit_duemap: the claimer's due times (src/duemap.h). Checked against a
 * plain array doing the same by brute force, over random lowerings, takes
 * and puts of a few thousand endpoints: enough to grow the table and the
 * heap several times and to delete from every corner of the hash probing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duemap.h"
#include "unit.h"

enum { IDS = 3000, ROUNDS = 200000 };

/* The model: each endpoint's time (DUEMAP_NONE: not remembered), and
 * whether it is taken with its lowering meanwhile. */
static int64_t model_due[IDS], model_lowered[IDS];
static bool model_taken[IDS];

static void id_of(int i, char out[UUID_STR_LEN])
{
	snprintf(out, UUID_STR_LEN, "0190a1b2-c3d4-7e5f-8a6b-%012d", i);
}

static int index_of(const char *id)
{
	return atoi(id + 24);
}

static void model_lower(int i, int64_t due)
{
	if (model_taken[i]) {
		if (due < model_lowered[i])
			model_lowered[i] = due;
	} else if (due < model_due[i]) {
		model_due[i] = due;
	}
}

static int64_t model_first(void)
{
	int64_t first = DUEMAP_NONE;
	for (int i = 0; i < IDS; i++)
		if (!model_taken[i] && model_due[i] < first)
			first = model_due[i];
	return first;
}

static size_t model_count_due(int64_t now)
{
	size_t n = 0;
	for (int i = 0; i < IDS; i++)
		n += !model_taken[i] && model_due[i] <= now;
	return n;
}

/* One take checked against the model: the right endpoints, earliest first,
 * each with its time. Some are lowered while taken, as other threads do;
 * then all go back with new times, or none. Returns whether it went wrong. */
static bool take_and_put(struct duemap *m, int64_t now)
{
	struct duemap_item *items;
	size_t want = model_count_due(now);
	size_t n = duemap_take(m, now, &items);
	bool bad = n != want;
	for (size_t k = 0; k < n; k++) {
		int i = index_of(items[k].id);
		bad |= model_taken[i] || items[k].due != model_due[i] || items[k].due > now ||
		       (k > 0 && items[k].due < items[k - 1].due);
		model_taken[i] = true;
		model_lowered[i] = DUEMAP_NONE;
	}
	for (size_t k = 0; k < n; k++) {
		if (rand() % 4 == 0) {
			int64_t t = now + rand() % 3000;
			duemap_lower(m, items[k].id, t);
			model_lower(index_of(items[k].id), t);
		}
	}
	for (size_t k = 0; k < n; k++) {
		int i = index_of(items[k].id);
		items[k].due = rand() % 3 == 0 ? DUEMAP_NONE : now + rand() % 5000;
		model_due[i] = items[k].due < model_lowered[i] ? items[k].due : model_lowered[i];
		model_taken[i] = false;
	}
	duemap_put(m, items, n);
	return bad;
}

static void test_against_model(void)
{
	struct duemap *m = duemap_new();
	CHECK(m != NULL, "a duemap is made");
	CHECK(duemap_first(m) == DUEMAP_NONE, "an empty map has nothing due");
	for (int i = 0; i < IDS; i++)
		model_due[i] = DUEMAP_NONE;
	srand(7);
	int64_t now = 1000000;
	int wrong_first = 0, wrong_take = 0;
	for (int r = 0; r < ROUNDS; r++) {
		int i = rand() % IDS;
		char id[UUID_STR_LEN];
		id_of(i, id);
		int64_t due = now - 2000 + rand() % 6000;
		duemap_lower(m, id, due);
		model_lower(i, due);
		if (r % 10 == 0 && duemap_first(m) != model_first())
			wrong_first++;
		if (r % 97 == 0)
			wrong_take += take_and_put(m, now);
		now += rand() % 3;
	}
	CHECK_INT(wrong_first, 0, "the earliest time is always the model's");
	CHECK_INT(wrong_take, 0, "takes give the model's due endpoints, earliest first, and no other");
	/* Drain it: everything taken and put back as done, the map is empty. */
	struct duemap_item *items;
	size_t n = duemap_take(m, INT64_MAX - 1, &items);
	for (size_t k = 0; k < n; k++)
		items[k].due = DUEMAP_NONE;
	duemap_put(m, items, n);
	CHECK(n > 0 && duemap_first(m) == DUEMAP_NONE, "endpoints put back with nothing due are forgotten");
	duemap_free(m);
}

/* The race the claimer has with publishers: a lowering while an endpoint is
 * taken may come from a commit the claim did not see. */
static void test_lowered_while_taken(void)
{
	struct duemap *m = duemap_new();
	char a[UUID_STR_LEN], b[UUID_STR_LEN];
	id_of(1, a);
	id_of(2, b);
	duemap_lower(m, a, 100);
	duemap_lower(m, b, 500);
	struct duemap_item *items;
	size_t n = duemap_take(m, 200, &items);
	CHECK(n == 1 && strcmp(items[0].id, a) == 0 && items[0].due == 100, "only the due one is taken");
	CHECK_INT(duemap_first(m), 500, "a taken endpoint is out of the map");
	duemap_lower(m, a, 300);
	items[0].due = DUEMAP_NONE; /* the claim saw nothing more */
	duemap_put(m, items, n);
	CHECK_INT(duemap_first(m), 300, "the lowering made meanwhile is kept");
	n = duemap_take(m, 1000, &items);
	CHECK(n == 2 && strcmp(items[0].id, a) == 0 && strcmp(items[1].id, b) == 0,
	      "both are taken, the earliest first");
	items[0].due = 900;
	items[1].due = 50;
	duemap_lower(m, b, 700); /* later than what the claim read: no effect */
	duemap_put(m, items, n);
	CHECK_INT(duemap_first(m), 50, "put back at the times read");
	duemap_free(m);
}

static void test_walks(void)
{
	struct duemap *m = duemap_new();
	CHECK(duemap_walk_wanted(m, 5000, 0), "a new map wants a walk");
	CHECK(!duemap_walk_wanted(m, 5001, 0), "once");
	duemap_stale(m);
	CHECK(duemap_walk_wanted(m, 5002, 0), "and again when told it is stale");
	CHECK(!duemap_walk_wanted(m, 5999, 1000), "not before its period");
	CHECK(duemap_walk_wanted(m, 6002, 1000), "and at its period");
	duemap_free(m);
}

int main(void)
{
	test_against_model();
	test_lowered_while_taken();
	test_walks();
	return unit_done();
}
