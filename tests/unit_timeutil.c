/*
 * unit_timeutil: ISO 8601, durations, sizes, UUIDs.
 */
#include <stdio.h>
#include <string.h>

#include "timeutil.h"
#include "unit.h"
#include "uuid.h"

#define T 1778162400000LL /* 2026-05-07T14:00:00Z */

static void test_iso(void)
{
	static const struct { const char *s; long long ms; } good[] = {
		{ "2026-05-07T14:00:00Z", T }, { "2026-05-07t14:00:00z", T },
		{ "2026-05-07T16:00:00+02:00", T }, { "2026-05-07T09:30:00-0430", T },
		{ "2026-05-07T15:00:00+01", T }, { "2026-05-07T14:00:00.250Z", T + 250 },
		{ "2026-05-07T14:00:00.1234567Z", T + 123 }, { "2026-05-07", T - 14 * 3600000LL },
		{ "1970-01-01T00:00:00Z", 0 }, { "2024-02-29T00:00:00Z", 1709164800000LL },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t ms = -1;
		char name[96];
		snprintf(name, sizeof(name), "parse %s", good[i].s);
		CHECK(tu_parse_iso(good[i].s, &ms) == 0 && ms == good[i].ms, name);
	}
	static const char *const bad[] = {
		"", "yesterday", "2026-13-01T00:00:00Z", "2026-00-10", "2026-02-30", "2025-02-29",
		"2026-05-32", "2026-05-07T24:00:00Z", "2026-05-07T14:60:00Z", "2026-05-07T14:00:00",
		"2026-05-07T14:00Z", "2026-05-07T14:00:00Zjunk", "2026-05-07 14:00:00Z", "1969-12-31",
		"2026-05-07T14:00:00+25:00", "2026-05-07T14:00:00.Z", "20260507T140000Z", "2026-5-7",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms;
		char name[96];
		snprintf(name, sizeof(name), "refuse '%s'", bad[i]);
		CHECK(tu_parse_iso(bad[i], &ms) != 0, name);
	}
	char buf[TU_ISO_LEN];
	CHECK_STR(tu_format_iso(T, buf), "2026-05-07T14:00:00Z", "format whole second");
	CHECK_STR(tu_format_iso(T + 5, buf), "2026-05-07T14:00:00.005Z", "format milliseconds");
}

static void test_durations_sizes(void)
{
	int64_t ms;
	uint64_t n;
	CHECK(tu_parse_duration_ms("250ms", &ms) == 0 && ms == 250, "250ms");
	CHECK(tu_parse_duration_ms("5s", &ms) == 0 && ms == 5000, "5s");
	CHECK(tu_parse_duration_ms("2m", &ms) == 0 && ms == 120000, "2m");
	CHECK(tu_parse_duration_ms("12h", &ms) == 0 && ms == 43200000, "12h");
	CHECK(tu_parse_duration_ms("1d", &ms) == 0 && ms == 86400000, "1d");
	CHECK(tu_parse_duration_ms("30", &ms) == 0 && ms == 30000, "bare number is seconds");
	CHECK(tu_parse_duration_ms("", &ms) != 0 && tu_parse_duration_ms("-5s", &ms) != 0 &&
	      tu_parse_duration_ms("5x", &ms) != 0 && tu_parse_duration_ms("s", &ms) != 0 &&
	      tu_parse_duration_ms("99999999999999999999d", &ms) != 0, "bad durations refused");
	CHECK(tu_parse_size("1MiB", &n) == 0 && n == 1048576, "1MiB");
	CHECK(tu_parse_size("2KiB", &n) == 0 && n == 2048, "2KiB");
	CHECK(tu_parse_size("1MB", &n) == 0 && n == 1000000, "1MB");
	CHECK(tu_parse_size("4096", &n) == 0 && n == 4096, "bytes");
	CHECK(tu_parse_size("1TiB", &n) != 0 && tu_parse_size("", &n) != 0 &&
	      tu_parse_size("99999999999999999999GiB", &n) != 0, "bad sizes refused");
}

static void test_uuid(void)
{
	char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN];
	uuid_v7(a);
	CHECK(strlen(a) == 36 && a[14] == '7' && strchr("89ab", a[19]), "version 7, RFC variant");
	int sorted = 1;
	for (int i = 0; i < 10000; i++) {
		uuid_v7(b);
		sorted &= strcmp(a, b) < 0;
		memcpy(a, b, sizeof(a));
	}
	CHECK(sorted, "10000 ids in a row are strictly increasing");
	CHECK(uuid_parse("01890A5D-AC96-774B-BCCE-B302099A8057", c) == 0 &&
	      strcmp(c, "01890a5d-ac96-774b-bcce-b302099a8057") == 0, "parse upper case");
	CHECK(uuid_parse("01890a5d-ac96-774b-bcce-b302099a805", c) != 0 &&
	      uuid_parse("01890a5d-ac96-774b-bcce-b302099a80577", c) != 0 &&
	      uuid_parse("01890a5dxac96-774b-bcce-b302099a8057", c) != 0 && uuid_parse("", c) != 0,
	      "malformed ids refused");
}

int main(void)
{
	test_iso();
	test_durations_sizes();
	test_uuid();
	return unit_done();
}
