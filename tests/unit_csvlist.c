/*
 * unit_csvlist: walking a comma-separated option value.
 */
#include <stdio.h>
#include <string.h>

#include "csvlist.h"
#include "unit.h"

/* The walk of csv as text: each item in brackets, then what ended it
 * ("end", "bad" or "trailing"), with a buffer of cap bytes. */
static const char *walk(const char *csv, size_t cap)
{
	static char out[256];
	char item[64];
	struct csvlist l;
	enum csvlist_step st;
	out[0] = '\0';
	csvlist_start(&l, csv);
	while ((st = csvlist_next(&l, item, cap)) == CSVLIST_ITEM)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "[%s]", item);
	const char *why = st == CSVLIST_END ? "end" : st == CSVLIST_BAD_ITEM ? "bad" : "trailing";
	snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s", why);
	if (csvlist_next(&l, item, cap) != CSVLIST_END)
		return "the walk went on after it ended";
	return out;
}

static const struct {
	const char *csv;
	size_t cap;
	const char *want, *name;
} cases[] = {
	{ NULL, 64, "end", "NULL is an empty list" },
	{ "", 64, "end", "so is the empty string" },
	{ "5s", 64, "[5s]end", "one item" },
	{ "5s,30s,2m", 64, "[5s][30s][2m]end", "three items, in order" },
	{ " 5s ,\t30s\t, 2m", 64, "[5s][30s][2m]end", "spaces and tabs trimmed" },
	{ "a b,c", 64, "[a b][c]end", "inner spaces kept" },
	{ "5s,", 64, "[5s]trailing", "a trailing comma is reported" },
	{ "5s, ", 64, "[5s]bad", "a blank last item is an empty one" },
	{ ",5s", 64, "bad", "a leading comma is an empty item" },
	{ "5s,,2m", 64, "[5s]bad", "two commas in a row: an empty item, and the walk stops" },
	{ ",", 64, "bad", "a lone comma" },
	{ "abcd,abc", 4, "bad", "an item that does not fit is refused" },
	{ "abc,ab", 4, "[abc][ab]end", "one that just fits is taken" },
	{ "  abc  ", 4, "[abc]end", "the fit counts the trimmed item" },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(walk(cases[i].csv, cases[i].cap), cases[i].want, cases[i].name);
	return unit_done();
}
