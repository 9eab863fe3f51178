/*
 * duemap: when each endpoint's earliest claimable delivery falls due, kept
 * in memory by each store (by each node, on PostgreSQL) so that a claim
 * visits only the endpoints with something due, not every endpoint with
 * anything pending.
 *
 * A time here is a hint: it may be early (a claim then spends one index
 * seek to learn the true one) but must never be late, or a delivery waits
 * for nothing. So whoever makes a delivery claimable sooner than its
 * endpoint's hint lowers the hint (duemap_lower), while it holds the
 * database's write lock or after its commit. The claimer takes the
 * endpoints whose time has come (duemap_take), claims from them and puts
 * each back with the time its own transaction read (duemap_put). A lowering
 * that arrives while an endpoint is taken is kept: it may come from a
 * commit the claimer's read did not see.
 *
 * Thread-safe (one mutex). Each operation is O(log n) per endpoint, n the
 * endpoints remembered: those with something pending.
 */
#ifndef HK_DUEMAP_H
#define HK_DUEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uuid.h"

/* The time of an endpoint with nothing claimable: forget it. */
#define DUEMAP_NONE INT64_MAX

struct duemap;

/* An endpoint taken for a claim, and the time to put it back with. */
struct duemap_item {
	char id[UUID_STR_LEN];
	int64_t due;
};

/* NULL when out of memory. */
struct duemap *duemap_new(void);
void duemap_free(struct duemap *m);

/* The endpoint has something claimable at `due`: remember the earlier of
 * that and what was known. Out of memory, the map asks for a walk. */
void duemap_lower(struct duemap *m, const char *id, int64_t due);

/* Take every endpoint due at or before now, the earliest first, into
 * *items (malloc'd; NULL when none). Until put back, they are out of the
 * map. Returns how many (0 also when out of memory, with a walk asked). */
size_t duemap_take(struct duemap *m, int64_t now, struct duemap_item **items);

/* Put taken endpoints back, each at items[i].due (DUEMAP_NONE: nothing
 * claimable), or earlier if it was lowered meanwhile. Frees items. */
void duemap_put(struct duemap *m, struct duemap_item *items, size_t n);

/* The earliest time remembered; DUEMAP_NONE when nothing is. */
int64_t duemap_first(struct duemap *m);

/* Ask for a walk: the hints may have missed something (a bulk change, a
 * lack of memory, another process writing the same database). */
void duemap_stale(struct duemap *m);

/* Is a walk wanted: asked for, or due every `every_ms` from the last
 * (0: only when asked)? true claims it: the caller then lowers every
 * endpoint it finds and, failing, calls duemap_stale. */
bool duemap_walk_wanted(struct duemap *m, int64_t now, int64_t every_ms);

#endif
