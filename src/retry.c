/*
 * retry: schedules and Retry-After. See retry.h.
 */
#include "retry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
	const char *p = csv;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[32];
		if (out.n == RETRY_MAX_STEPS || len == 0 || len >= sizeof(item)) {
			snprintf(errbuf, errcap, "retry schedule: %s", out.n == RETRY_MAX_STEPS
			         ? "at most 32 delays" : "each delay must be like 5s, 2m or 1h");
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (tu_parse_duration_ms(item, &out.delay_ms[out.n]) != 0) {
			snprintf(errbuf, errcap, "retry schedule: invalid delay '%.31s'", item);
			return -1;
		}
		out.n++;
		p = comma ? comma + 1 : NULL;
		if (p && *p == '\0') {
			snprintf(errbuf, errcap, "retry schedule: trailing comma");
			return -1;
		}
	}
	*s = out;
	return 0;
}

int64_t retry_delay_ms(const struct retry_schedule *s, int attempts_made, uint32_t random)
{
	if (attempts_made < 1 || attempts_made > s->n)
		return -1;
	int64_t d = s->delay_ms[attempts_made - 1];
	/* jitter in [0, d/10], from the top bits of random */
	return d + (int64_t)(((unsigned __int128)(d / 10) * random) >> 32);
}

static int month_index(const char *m)
{
	static const char *const names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	for (int i = 0; i < 12; i++)
		if (strncmp(m, names[i], 3) == 0)
			return i;
	return -1;
}

/* An HTTP-date in any of the three forms of RFC 9110; seconds, or -1. */
static int64_t http_date(const char *v)
{
	char wd[16], mon[4];
	int d, y, hh, mm, ss, n = 0;
	struct tm tm = { 0 };
	if (sscanf(v, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm, &ss, &n) == 7 && !v[n])
		;
	else if ((n = 0, sscanf(v, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm, &ss, &n)) == 7 && !v[n])
		y += y < 70 ? 2000 : 1900;
	else if ((n = 0, sscanf(v, "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &hh, &mm, &ss, &y, &n)) == 7 && !v[n])
		;
	else
		return -1;
	int m = month_index(mon);
	if (m < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970 || y > 9999)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	time_t t = timegm(&tm);
	return t == (time_t)-1 ? -1 : (int64_t)t;
}

int64_t retry_after_ms(const char *value, int64_t now_ms)
{
	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	char v[64];
	size_t n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' ||
	                 value[n - 1] == '\n'))
		n--;
	if (n == 0 || n >= sizeof(v))
		return -1;
	memcpy(v, value, n);
	v[n] = '\0';
	if (isdigit((unsigned char)v[0])) {
		int64_t secs = 0;
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)v[i]) || secs > INT64_MAX / 10000)
				return -1;
			secs = secs * 10 + (v[i] - '0');
		}
		return secs * 1000;
	}
	int64_t at = http_date(v);
	if (at < 0)
		return -1;
	int64_t ms = at * 1000 - now_ms;
	return ms > 0 ? ms : 0;
}
