/*
 * unit_timeutil: ISO 8601, durations, sizes, clocks, and UUIDs (uuid.c has
 * no binary of its own: ids and times are tested together).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "unit.h"
#include "uuid.h"

#define T 1778162400000LL /* 2026-05-07T14:00:00Z */

static void test_iso_good(void)
{
	static const struct { const char *s; long long ms; } good[] = {
		{ "2026-05-07T14:00:00Z", T }, { "2026-05-07t14:00:00z", T },
		{ "2026-05-07T16:00:00+02:00", T }, { "2026-05-07T09:30:00-0430", T },
		{ "2026-05-07T15:00:00+01", T }, { "2026-05-07T14:00:00.250Z", T + 250 },
		{ "2026-05-07T14:00:00.1234567Z", T + 123 }, { "2026-05-07", T - 14 * 3600000LL },
		{ "2026-05-07T14:00:00,5Z", T + 500 }, { "2026-05-07T14:00:00.9Z", T + 900 },
		{ "2026-05-07T14:00:00.999999999999999999999999999999Z", T + 999 },
		{ "2026-05-07T14:00:00-00:00", T }, { "2026-05-07T14:00:00+0000", T },
		{ "2026-05-07T19:30:00+05:30", T }, { "2026-05-07T14:00:60Z", T + 59000 },
		{ "1970-01-01T00:00:00Z", 0 }, { "2024-02-29T00:00:00Z", 1709164800000LL },
		{ "2000-02-29", 951782400000LL }, { "9999-12-31T23:59:59Z", 253402300799000LL },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t ms = -1;
		char name[96];
		snprintf(name, sizeof(name), "parse %s", good[i].s);
		CHECK(tu_parse_iso(good[i].s, &ms) == 0 && ms == good[i].ms, name);
	}
}

static void test_iso_bad(void)
{
	static const char *const bad[] = {
		"", "yesterday", "2026-13-01T00:00:00Z", "2026-00-10", "2026-02-30", "2025-02-29",
		"2100-02-29", "2026-04-31", "2026-05-32", "2026-05-00", "2026-05-07T24:00:00Z",
		"2026-05-07T14:60:00Z", "2026-05-07T14:00:61Z", "2026-05-07T14:00:00", "2026-05-07T14:00Z",
		"2026-05-07T14:00:00Zjunk", "2026-05-07 14:00:00Z", "1969-12-31", "0000-01-01",
		"2026-05-07T14:00:00+25:00", "2026-05-07T14:00:00+02:60", "2026-05-07T14:00:00+02:",
		"2026-05-07T14:00:00+02:3", "2026-05-07T14:00:00+2", "2026-05-07T14:00:00+023",
		"2026-05-07T14:00:00+02:00junk", "2026-05-07T14:00:00.Z", "2026-05-07T14:00:00.5",
		"20260507T140000Z", "2026-5-7", "2026-05-07T", "2026-05-07Z", " 2026-05-07",
		"2026-05-07 ", "2026-05-07T14:00:00Z\n", "10000-01-01", "+2026-05-07", "2026-05-07T1:00:00Z",
		"2026-05-07T14:00:00ZZ", "2026-05-07T14:00:00+02:00:00", "2026-05-07T14:00:00.-1Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 42;
		char name[96];
		snprintf(name, sizeof(name), "refuse '%s'", bad[i]);
		CHECK(tu_parse_iso(bad[i], &ms) != 0 && ms == 42, name);
	}
	int64_t ms;
	CHECK(tu_parse_iso(NULL, &ms) != 0, "refuse NULL");
}

static void test_iso_format(void)
{
	char buf[TU_ISO_LEN];
	CHECK_STR(tu_format_iso(T, buf), "2026-05-07T14:00:00Z", "format whole second");
	CHECK_STR(tu_format_iso(T + 5, buf), "2026-05-07T14:00:00.005Z", "format milliseconds");
	CHECK_STR(tu_format_iso(0, buf), "1970-01-01T00:00:00Z", "format the epoch");
	CHECK_STR(tu_format_iso(-1, buf), "1969-12-31T23:59:59.999Z", "format before the epoch");
	CHECK(strlen(tu_format_iso(INT64_MAX, buf)) < TU_ISO_LEN, "INT64_MAX fits");
	CHECK(strlen(tu_format_iso(INT64_MIN, buf)) < TU_ISO_LEN, "INT64_MIN fits");
	static const int64_t rt[] = { 0, 1, 999, 1000, T, T + 1, 951782400000LL, 253402300799999LL };
	int same = 1;
	for (size_t i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
		int64_t back = -1;
		same &= tu_parse_iso(tu_format_iso(rt[i], buf), &back) == 0 && back == rt[i];
	}
	CHECK(same, "format then parse gives the same ms");
}

static void test_iso_fuzz(void)
{
	static const char alphabet[] = "0123456789-T:Z+.,tz 9";
	unsigned seed = 777;
	char buf[40];
	int64_t ms;
	for (int i = 0; i < 50000; i++) {
		seed = seed * 1103515245 + 12345;
		size_t len = (seed >> 16) % 36;
		for (size_t n = 0; n < len; n++) {
			seed = seed * 1103515245 + 12345;
			buf[n] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		buf[len] = '\0';
		tu_parse_iso(buf, &ms);
		tu_parse_duration_ms(buf, &ms);
	}
	CHECK(1, "50000 random strings parsed without a fault");
}

static void test_durations(void)
{
	static const struct { const char *s; long long ms; } good[] = {
		{ "250ms", 250 }, { "5s", 5000 }, { "2m", 120000 }, { "12h", 43200000 },
		{ "1d", 86400000 }, { "30", 30000 }, { "0", 0 }, { "0ms", 0 }, { "007s", 7000 },
		{ "9223372036854775807ms", INT64_MAX }, { "106751991167d", 9223372036828800000LL },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t ms = -1;
		char name[96];
		snprintf(name, sizeof(name), "duration %s", good[i].s);
		CHECK(tu_parse_duration_ms(good[i].s, &ms) == 0 && ms == good[i].ms, name);
	}
	static const char *const bad[] = {
		"", "-5s", "+5s", "5x", "s", "5S", "5 s", " 5s", "5s ", "5.5s", "1h30m", "5sec",
		"9223372036854775808ms", "9223372036854775808", "106751991168d", "99999999999999999999d",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 42;
		char name[96];
		snprintf(name, sizeof(name), "refuse duration '%s'", bad[i]);
		CHECK(tu_parse_duration_ms(bad[i], &ms) != 0 && ms == 42, name);
	}
	int64_t ms;
	CHECK(tu_parse_duration_ms(NULL, &ms) != 0, "refuse a NULL duration");
}

static void test_sizes(void)
{
	static const struct { const char *s; unsigned long long n; } good[] = {
		{ "1MiB", 1048576 }, { "2KiB", 2048 }, { "1GiB", 1073741824 }, { "512KiB", 524288 },
		{ "1KB", 1000 }, { "1MB", 1000000 }, { "1GB", 1000000000 }, { "4096", 4096 },
		{ "1B", 1 }, { "0", 0 }, { "18446744073709551615", UINT64_MAX },
		{ "17179869183GiB", 17179869183ULL << 30 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t n = 1;
		char name[96];
		snprintf(name, sizeof(name), "size %s", good[i].s);
		CHECK(tu_parse_size(good[i].s, &n) == 0 && n == good[i].n, name);
	}
	static const char *const bad[] = {
		"", "1TiB", "1kib", "1 MiB", "-1", "+1", "MiB", "1.5MiB", "1MiBs",
		"18446744073709551616", "17179869184GiB", "99999999999999999999GiB",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t n = 42;
		char name[96];
		snprintf(name, sizeof(name), "refuse size '%s'", bad[i]);
		CHECK(tu_parse_size(bad[i], &n) != 0 && n == 42, name);
	}
}

static void test_clocks(void)
{
	int64_t now = tu_now_ms(), m1 = tu_mono_ms(), m2 = tu_mono_ms();
	CHECK(now > 1700000000000LL && now < 4102444800000LL, "wall clock is a plausible time");
	CHECK(m2 >= m1, "monotonic clock does not go back");
}

/* Each thread makes ids; they must be increasing per thread. */
#define PER_THREAD 5000
static void *make_ids(void *arg)
{
	char(*ids)[UUID_STR_LEN] = arg;
	intptr_t bad = 0;
	for (int i = 0; i < PER_THREAD; i++) {
		uuid_v7(ids[i]);
		bad += i > 0 && strcmp(ids[i - 1], ids[i]) >= 0;
	}
	return (void *)bad;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_uuid_threads(void)
{
	static char ids[4 * PER_THREAD][UUID_STR_LEN];
	pthread_t t[4];
	intptr_t bad = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, make_ids, ids[i * PER_THREAD]);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (intptr_t)r;
	}
	CHECK_INT(bad, 0, "ids increase within each of 4 threads");
	qsort(ids, 4 * PER_THREAD, UUID_STR_LEN, cmp_id);
	int dup = 0;
	for (int i = 1; i < 4 * PER_THREAD; i++)
		dup += strcmp(ids[i - 1], ids[i]) == 0;
	CHECK_INT(dup, 0, "20000 ids from 4 threads are all distinct");
}

static void test_uuid(void)
{
	char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN];
	int64_t before = tu_now_ms();
	uuid_v7(a);
	CHECK(strlen(a) == 36 && a[14] == '7' && strchr("89ab", a[19]), "version 7, RFC variant");
	CHECK(uuid_parse(a, c) == 0 && strcmp(a, c) == 0, "a new id parses as itself");
	char ts[13];
	memcpy(ts, a, 8);
	memcpy(ts + 8, a + 9, 4);
	ts[12] = '\0';
	int64_t ms = (int64_t)strtoll(ts, NULL, 16);
	CHECK(ms >= before && ms <= tu_now_ms() + 1, "the first 48 bits are the current ms");
	int sorted = 1, shaped = 1;
	for (int i = 0; i < 10000; i++) {
		uuid_v7(b);
		sorted &= strcmp(a, b) < 0;
		shaped &= b[8] == '-' && b[13] == '-' && b[18] == '-' && b[23] == '-' && b[14] == '7' &&
		          strchr("89ab", b[19]) != NULL && strspn(b, "0123456789abcdef-") == 36;
		memcpy(a, b, sizeof(a));
	}
	CHECK(sorted, "10000 ids in a row are strictly increasing");
	CHECK(shaped, "  ... each lowercase canonical v7");
	test_uuid_threads();
	CHECK(uuid_parse("01890A5D-AC96-774B-BCCE-B302099A8057", c) == 0 &&
	      strcmp(c, "01890a5d-ac96-774b-bcce-b302099a8057") == 0, "parse upper case");
	strcpy(c, "01890A5D-AC96-474B-BCCE-B302099A8057");
	CHECK(uuid_parse(c, c) == 0 && strcmp(c, "01890a5d-ac96-474b-bcce-b302099a8057") == 0,
	      "parse in place, any version");
	static const char *const bad[] = {
		"01890a5d-ac96-774b-bcce-b302099a805", "01890a5d-ac96-774b-bcce-b302099a80577",
		"01890a5dxac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a805g",
		"{01890a5d-ac96-774b-bcce-b302099a8057}", "01890a5dac96774bbcceb302099a8057", "",
		"01890a5d-ac96-774b-bcce-b302099a805 ", "delivery_01890a5d-ac96-774b-bcce-b302099a8057",
	};
	int refused = 1;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(c, "untouched");
		refused &= uuid_parse(bad[i], c) != 0 && strcmp(c, "untouched") == 0;
	}
	CHECK(refused && uuid_parse(NULL, c) != 0, "malformed ids refused, out untouched");
}

int main(void)
{
	test_iso_good();
	test_iso_bad();
	test_iso_format();
	test_iso_fuzz();
	test_durations();
	test_sizes();
	test_clocks();
	test_uuid();
	return unit_done();
}
