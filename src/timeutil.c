/*
 * timeutil: clocks and hand-checked parsers. See timeutil.h.
 *
 * Calendar arithmetic uses days-from-civil (Howard Hinnant's algorithm), so
 * no parser depends on the process time zone or on timegm's leniency.
 */
#include "timeutil.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tu_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

char *tu_format_iso(int64_t ms, char buf[TU_ISO_LEN])
{
	/* Floor division, written so that INT64_MIN cannot overflow. */
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		secs--;
		frac += 1000;
	}
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, TU_ISO_LEN, "1970-01-01T00:00:00Z");
		return buf;
	}
	size_t n = strftime(buf, TU_ISO_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(buf + n, TU_ISO_LEN - n, ".%03dZ", frac);
	else
		snprintf(buf + n, TU_ISO_LEN - n, "Z");
	return buf;
}

/* Exactly n digits at *p into *out; advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* "Z", "+hh", "+hhmm", "+hh:mm" (or '-'): the offset in minutes east. */
static bool parse_offset(const char *p, int *minutes)
{
	if (*p == 'Z' || *p == 'z') {
		*minutes = 0;
		return p[1] == '\0';
	}
	if (*p != '+' && *p != '-')
		return false;
	int sign = *p == '-' ? -1 : 1, hh, mm = 0;
	p++;
	if (!digits(&p, 2, &hh) || hh > 23)
		return false;
	/* After a colon the minutes are required: "+02:" is not an offset. */
	bool colon = *p == ':';
	p += colon;
	if ((colon || *p) && (!digits(&p, 2, &mm) || mm > 59))
		return false;
	*minutes = sign * (hh * 60 + mm);
	return *p == '\0';
}

/* "hh:mm:ss[.fff...]" then the offset; adds its ms to *ms. */
static bool parse_clock(const char *p, int64_t *ms)
{
	int hh, mi, ss, off;
	if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
	    !digits(&p, 2, &ss) || hh > 23 || mi > 59 || ss > 60)
		return false;
	/* Digits past the third only have to be digits: ms are kept, not rounded. */
	int frac = 0, scale = 100;
	if (*p == '.' || *p == ',') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			frac += scale ? (*p - '0') * scale : 0;
	}
	if (!parse_offset(p, &off))
		return false;
	/* A leap second (:60) is held at :59 rather than rolling into the next minute. */
	*ms += ((int64_t)hh * 3600 + mi * 60 + (ss > 59 ? 59 : ss) - (int64_t)off * 60) * 1000 + frac;
	return true;
}

int tu_parse_iso(const char *s, int64_t *out_ms)
{
	if (!s)
		return -1;
	const char *p = s;
	int y, m, d;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &m) || *p++ != '-' ||
	    !digits(&p, 2, &d))
		return -1;
	if (y < 1970 || m < 1 || m > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)m))
		return -1;
	int64_t ms = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400000LL;
	if (*p == '\0') {
		*out_ms = ms;
		return 0;
	}
	if ((*p != 'T' && *p != 't') || !parse_clock(p + 1, &ms))
		return -1;
	*out_ms = ms;
	return 0;
}

/* A non-negative integer prefix; *end at the first non-digit. False when
 * there are no digits or the number is over UINT64_MAX. */
static bool leading_uint(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	const char *p = s;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	*end = p;
	return p != s;
}

int tu_parse_duration_ms(const char *s, int64_t *out_ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 },
	};
	uint64_t v;
	const char *unit;
	if (!s || !leading_uint(s, &v, &unit))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		if (v > (uint64_t)INT64_MAX / units[i].ms)
			return -1;
		*out_ms = (int64_t)(v * units[i].ms);
		return 0;
	}
	return -1;
}

int tu_parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "", 1 }, { "B", 1 }, { "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 },
		{ "GiB", 1ULL << 30 }, { "KB", 1000 }, { "MB", 1000000 }, { "GB", 1000000000 },
	};
	uint64_t v;
	const char *unit;
	if (!s || !leading_uint(s, &v, &unit))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return -1;
		*out = v * units[i].mult;
		return 0;
	}
	return -1;
}
