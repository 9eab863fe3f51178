/*
 * csvlist: the items of a comma-separated option value (csvlist.h).
 */
#include "csvlist.h"

#include <string.h>

void csvlist_start(struct csvlist *l, const char *csv)
{
	l->rest = csv;
	l->comma = false;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

enum csvlist_step csvlist_next(struct csvlist *l, char *buf, size_t cap)
{
	const char *p = l->rest;
	if (!p || (!*p && !l->comma)) {
		l->rest = NULL;
		return CSVLIST_END;
	}
	if (!*p) {
		l->rest = NULL;
		return CSVLIST_TRAILING;
	}
	const char *comma = strchr(p, ',');
	size_t len = comma ? (size_t)(comma - p) : strlen(p);
	l->rest = comma ? comma + 1 : NULL;
	l->comma = comma != NULL;
	while (len && blank(*p))
		p++, len--;
	while (len && blank(p[len - 1]))
		len--;
	if (len == 0 || len >= cap) {
		l->rest = NULL;
		return CSVLIST_BAD_ITEM;
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	return CSVLIST_ITEM;
}
