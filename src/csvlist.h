/*
 * csvlist: the items of a comma-separated option value, such as
 * --retry-schedule 5s,30s,2m or --allow-targets 10.0.0.0/8,::1/128.
 *
 * Items are trimmed of spaces and tabs and copied out one at a time; an
 * empty item or a trailing comma is reported, not skipped, so that a typo
 * in a list is refused rather than half read. Pure functions: thread-safe,
 * no allocation.
 */
#ifndef HK_CSVLIST_H
#define HK_CSVLIST_H

#include <stdbool.h>
#include <stddef.h>

enum csvlist_step {
	CSVLIST_END,      /* no more items ("" and NULL have none) */
	CSVLIST_ITEM,     /* the next item is in the caller's buffer */
	CSVLIST_BAD_ITEM, /* the next item is empty or does not fit the buffer */
	CSVLIST_TRAILING, /* the list ends with a comma */
};

/* Where a walk of a list stands. */
struct csvlist {
	const char *rest; /* what follows the items taken; NULL once done */
	bool comma;       /* a comma came before rest */
};

/* Start a walk of csv (NULL: an empty list). csv must outlive the walk. */
void csvlist_start(struct csvlist *l, const char *csv);

/* The next item, trimmed, NUL-terminated into buf (cap bytes). Anything
 * but CSVLIST_ITEM ends the walk: later calls return CSVLIST_END. */
enum csvlist_step csvlist_next(struct csvlist *l, char *buf, size_t cap);

#endif
