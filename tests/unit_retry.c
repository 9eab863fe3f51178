/*
 * unit_retry: the retry schedule, jitter, and Retry-After.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "retry.h"
#include "unit.h"

static void test_default(void)
{
	static const int64_t want[] = { 5000, 30000, 120000, 600000, 1800000, 3600000,
	                                10800000, 21600000, 43200000 };
	struct retry_schedule s;
	retry_schedule_default(&s);
	CHECK_INT(s.n, 9, "default schedule: 9 delays, 10 attempts");
	int same = 1;
	for (int i = 0; i < 9; i++)
		same &= retry_delay_ms(&s, i + 1, 0) == want[i];
	CHECK(same, "5s,30s,2m,10m,30m,1h,3h,6h,12h");
	CHECK_INT(retry_delay_ms(&s, 1, 0), 5000, "after attempt 1: 5s");
	CHECK_INT(retry_delay_ms(&s, 9, 0), 43200000, "after attempt 9: 12h");
	CHECK_INT(retry_delay_ms(&s, 10, 0), -1, "after attempt 10: exhausted");
	CHECK_INT(retry_delay_ms(&s, 0, 0), -1, "attempt 0 is not a thing");
	CHECK_INT(retry_delay_ms(&s, -3, 0), -1, "nor a negative one");
}

static void test_jitter(void)
{
	struct retry_schedule s;
	char err[128];
	retry_schedule_default(&s);
	CHECK_INT(retry_delay_ms(&s, 1, UINT32_MAX), 5499, "jitter at its top: just under +10%");
	CHECK_INT(retry_delay_ms(&s, 1, 1u << 31), 5250, "jitter at half: +5%");
	CHECK_INT(retry_delay_ms(&s, 9, 1u << 31), 43200000 + 2160000, "half jitter on 12h");
	int in_range = 1;
	for (uint32_t r = 0, i = 0; i < 1000; i++, r = r * 1664525u + 1013904223u) {
		int64_t d = retry_delay_ms(&s, 2, r);
		in_range &= d >= 30000 && d < 33000;
	}
	CHECK(in_range, "1000 jittered delays within [d, d + 10%)");
	CHECK(retry_schedule_parse("0s,106751991167d", &s, err, sizeof(err)) == 0, "extreme schedule");
	CHECK_INT(retry_delay_ms(&s, 1, UINT32_MAX), 0, "a 0 delay gets no jitter");
	CHECK_INT(retry_delay_ms(&s, 2, UINT32_MAX), INT64_MAX, "a huge delay saturates, no overflow");
}

static void test_parse(void)
{
	struct retry_schedule s;
	char err[128];
	CHECK(retry_schedule_parse("1s,250ms,2m", &s, err, sizeof(err)) == 0 && s.n == 3 &&
	      s.delay_ms[0] == 1000 && s.delay_ms[1] == 250 && s.delay_ms[2] == 120000, "parse a schedule");
	CHECK(retry_schedule_parse(" 5s , 30s ", &s, err, sizeof(err)) == 0 && s.n == 2 &&
	      s.delay_ms[1] == 30000, "spaces around items ignored");
	CHECK(retry_schedule_parse("0s", &s, err, sizeof(err)) == 0 && s.n == 1 && s.delay_ms[0] == 0,
	      "a zero delay is allowed");
	CHECK(retry_schedule_parse("", &s, err, sizeof(err)) == 0 && s.n == 0, "empty: no retries");
	CHECK_INT(retry_delay_ms(&s, 1, 0), -1, "  ... so exhausted after the first attempt");
	CHECK(retry_schedule_parse(NULL, &s, err, sizeof(err)) == 0 && s.n == 0, "NULL: no retries");
	char csv[200] = "";
	for (int i = 0; i < 32; i++)
		strcat(csv, i ? ",1s" : "1s");
	CHECK(retry_schedule_parse(csv, &s, err, sizeof(err)) == 0 && s.n == 32, "32 delays accepted");
	strcat(csv, ",1s");
	CHECK(retry_schedule_parse(csv, &s, err, sizeof(err)) != 0 && strstr(err, "32"),
	      "more than 32 delays refused");
	static const char *const bad[] = {
		"5s,,1m", "5s,", ",5s", ",", " ", "5 s", "5s;30s", "-5s", "5x", "1h30m", "5s,junk",
		"99999999999999999999d", "5s,30s,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "schedule '%s' refused", bad[i]);
		retry_schedule_default(&s);
		CHECK(retry_schedule_parse(bad[i], &s, err, sizeof(err)) != 0 && s.n == 9 &&
		      strncmp(err, "retry schedule: ", 16) == 0, name);
	}
	CHECK(retry_schedule_parse("5s,junk", &s, err, sizeof(err)) != 0 && strstr(err, "'junk'"),
	      "the bad delay is named");
	CHECK(retry_schedule_parse("5s,junk", &s, NULL, 0) != 0, "a NULL errbuf is fine");
}

static void test_retry_after(void)
{
	int64_t now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
	static const struct { const char *v; long long ms; const char *name; } t[] = {
		{ "120", 120000, "delta-seconds" },
		{ "0", 0, "zero seconds" },
		{ " 2\r\n", 2000, "header whitespace and CRLF" },
		{ "\t007 ", 7000, "leading zeros" },
		{ "99999999999999999999", 2147483648000LL, "overflow saturates at 2^31 s" },
		{ "Wed, 21 Oct 2015 07:28:30 GMT", 30000, "IMF-fixdate" },
		{ " Wed, 21 Oct 2015 07:28:30 GMT\r\n", 30000, "IMF-fixdate with whitespace" },
		{ "Wednesday, 21-Oct-15 07:28:10 GMT", 10000, "RFC 850 date" },
		{ "Wednesday, 21-Oct-69 07:28:10 GMT", 1704153610000LL, "RFC 850: 69 is 2069" },
		{ "Wed Oct 21 07:29:00 2015", 60000, "asctime date" },
		{ "Sun Nov  6 08:49:37 1994", 0, "asctime with a padded day, past" },
		{ "Wed, 21 Oct 2015 07:00:00 GMT", 0, "a past date is now" },
		{ "Thu, 31 Dec 2037 23:59:60 GMT", 2145916799000LL - 1445412480000LL, "leap second" },
		{ "soon", -1, "junk refused" },
		{ "-5", -1, "negative refused" },
		{ "+5", -1, "signed refused" },
		{ "1.5", -1, "fraction refused" },
		{ "12abc", -1, "digits then junk refused" },
		{ "", -1, "empty refused" },
		{ " \r\n", -1, "blank refused" },
		{ "Wed, 31 Feb 2015 07:28:30 GMT", -1, "31 February refused" },
		{ "Xyz, 21 Oct 2015 07:28:30 GMT", -1, "unknown weekday refused" },
		{ "Wed, 21 Foo 2015 07:28:30 GMT", -1, "unknown month refused" },
		{ "Wed, 21 Oct 2015 07:28:30 UTC", -1, "a zone other than GMT refused" },
		{ "Wed, 21 Oct 2015 24:00:00 GMT", -1, "hour 24 refused" },
		{ "Wed, 21 Oct 2015 07:28:30 GMTx", -1, "trailing junk refused" },
		{ "Wed, 21 Oct 1969 07:28:30 GMT", -1, "before 1970 refused" },
		{ "Wed, -1 Oct 2015 07:28:30 GMT", -1, "negative day refused" },
		{ "Wed, 21 Oct 2015 07:28:30 GMT and then a great deal more text", -1, "overlong refused" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_INT(retry_after_ms(t[i].v, now), t[i].ms, t[i].name);
	CHECK_INT(retry_after_ms(NULL, now), -1, "NULL refused");
	char big[4096];
	memset(big, '9', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(retry_after_ms(big, now), 2147483648000LL, "4095 digits saturate");
}

static void test_fuzz(void)
{
	static const char alphabet[] = "0123456789 ,:-MonWedOctGMTJanFeb\r\n\t";
	unsigned seed = 99;
	char buf[48];
	int bad = 0;
	for (int i = 0; i < 50000; i++) {
		seed = seed * 1103515245 + 12345;
		size_t len = (seed >> 16) % 40;
		for (size_t n = 0; n < len; n++) {
			seed = seed * 1103515245 + 12345;
			buf[n] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		buf[len] = '\0';
		bad += retry_after_ms(buf, 0) < -1;
		struct retry_schedule s;
		retry_schedule_parse(buf, &s, NULL, 0);
	}
	CHECK_INT(bad, 0, "50000 random values: no fault, never below -1");
}

int main(void)
{
	test_default();
	test_jitter();
	test_parse();
	test_retry_after();
	test_fuzz();
	return unit_done();
}
