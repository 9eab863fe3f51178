/*
 * retry: schedules, jitter and Retry-After. See retry.h.
 *
 * The HTTP-date forms are matched with sscanf patterns, each then checked
 * field by field (names of day and month, ranges, the day against its month)
 * and converted with timegm, which needs no time zone.
 */
#include "retry.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "csvlist.h"
#include "timeutil.h"

void retry_schedule_default(struct retry_schedule *s)
{
	static const int64_t d[] = { 5000, 30000, 120000, 600000, 1800000, 3600000,
	                             10800000, 21600000, 43200000 };
	s->n = (int)(sizeof(d) / sizeof(d[0]));
	memcpy(s->delay_ms, d, sizeof(d));
}

int retry_schedule_parse(const char *csv, struct retry_schedule *s, char *errbuf, size_t errcap)
{
	struct retry_schedule out = { 0 };
	char item[32], bad[64];
	const char *why = NULL;
	struct csvlist l;
	enum csvlist_step st;
	csvlist_start(&l, csv);
	while (!why && (st = csvlist_next(&l, item, sizeof(item))) != CSVLIST_END) {
		if (st == CSVLIST_TRAILING) {
			why = "trailing comma";
		} else if (out.n == RETRY_MAX_STEPS) {
			why = "at most 32 delays";
		} else if (st == CSVLIST_BAD_ITEM) {
			why = "empty or overlong delay (each must be like 5s, 2m or 1h)";
		} else if (tu_parse_duration_ms(item, &out.delay_ms[out.n++]) != 0) {
			snprintf(bad, sizeof(bad), "invalid delay '%s'", item);
			why = bad;
		}
	}
	if (why) {
		if (errbuf && errcap)
			snprintf(errbuf, errcap, "retry schedule: %s", why);
		return -1;
	}
	*s = out;
	return 0;
}

int64_t retry_delay_ms(const struct retry_schedule *s, int attempts_made, uint32_t random)
{
	if (attempts_made < 1 || attempts_made > s->n)
		return -1;
	int64_t d = s->delay_ms[attempts_made - 1];
	/* floor(q * random / 2^32) in two halves, so that nothing overflows. */
	uint64_t q = d > 0 ? (uint64_t)d / 10 : 0;
	uint64_t jitter = (q >> 32) * random + (((q & 0xFFFFFFFFu) * random) >> 32);
	return jitter > (uint64_t)(INT64_MAX - d) ? INT64_MAX : d + (int64_t)jitter;
}

/* Index of name in a table of n names, or -1. */
static int name_index(const char *name, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const long_days[] = { "Monday", "Tuesday", "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday" };

/* The fields as read, checked, into seconds since the epoch; -1 when out of
 * range (a 31 Feb comes back from timegm as 3 Mar and is caught). */
static int64_t date_seconds(int y, const char *mon, int d, int hh, int mm, int ss)
{
	int m = name_index(mon, months, 12);
	if (m < 0 || y < 1970 || y > 9999 || d < 1 || d > 31 || hh < 0 || hh > 23 || mm < 0 ||
	    mm > 59 || ss < 0 || ss > 60)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m, .tm_mday = d,
	                 .tm_hour = hh, .tm_min = mm, .tm_sec = ss > 59 ? 59 : ss };
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != m)
		return -1;
	return (int64_t)t;
}

/* An HTTP-date in any of the three forms of RFC 9110; seconds, or -1. */
static int64_t http_date(const char *v)
{
	char wd[16], mon[4];
	int d, y, hh, mm, ss, n = 0;
	if (sscanf(v, "%15[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh,
	           &mm, &ss, &n) == 7 && !v[n] && name_index(wd, days, 7) >= 0)
		return date_seconds(y, mon, d, hh, mm, ss);
	n = 0;
	if (sscanf(v, "%15[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh,
	           &mm, &ss, &n) == 7 && !v[n] && name_index(wd, long_days, 7) >= 0)
		return date_seconds(y + (y < 70 ? 2000 : 1900), mon, d, hh, mm, ss);
	n = 0;
	if (sscanf(v, "%15[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &hh, &mm, &ss,
	           &y, &n) == 7 && !v[n] && name_index(wd, days, 7) >= 0)
		return date_seconds(y, mon, d, hh, mm, ss);
	return -1;
}

/* All digits: seconds into ms, saturating at 2^31 seconds (RFC 9111 1.2.2). */
static int64_t delta_seconds(const char *v, size_t n)
{
	const int64_t cap = INT64_C(2147483648);
	int64_t secs = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		if (secs < cap)
			secs = secs * 10 + (v[i] - '0');
	}
	return (secs < cap ? secs : cap) * 1000;
}

static bool header_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int64_t retry_after_ms(const char *value, int64_t now_ms)
{
	if (!value)
		return -1;
	while (header_space(*value))
		value++;
	size_t n = strlen(value);
	while (n > 0 && header_space(value[n - 1]))
		n--;
	if (n == 0)
		return -1;
	if (isdigit((unsigned char)value[0]))
		return delta_seconds(value, n);
	char v[64];
	if (n >= sizeof(v))
		return -1;
	memcpy(v, value, n);
	v[n] = '\0';
	int64_t at = http_date(v);
	if (at < 0)
		return -1;
	int64_t ms = at * 1000 - now_ms;
	return ms > 0 ? ms : 0;
}
