/*
 * timeutil: clocks, ISO 8601 times, durations and sizes.
 *
 * Every parser here takes outside input (flags, environment, query
 * parameters) and is fuzzed: each accepts exactly its documented grammar,
 * rejects everything else with -1 leaving its output untouched, and never
 * reads past the string's NUL. A NULL string is rejected like an empty one.
 */
#ifndef HK_TIMEUTIL_H
#define HK_TIMEUTIL_H

#include <stdint.h>

/* Wall clock, ms since the Unix epoch (for timestamps that are shown). */
int64_t tu_now_ms(void);
/* CLOCK_MONOTONIC in ms (for durations and deadlines; never jumps). */
int64_t tu_mono_ms(void);

#define TU_ISO_LEN 32
/* Writes ms as UTC "2026-05-07T14:00:00Z", or "2026-05-07T14:00:00.123Z"
 * when ms is not a whole second, into buf (always NUL-terminated; every
 * int64_t fits). Returns buf. */
char *tu_format_iso(int64_t ms, char buf[TU_ISO_LEN]);

/* ISO 8601 into ms since the epoch (OUT: *out_ms). Grammar:
 *     YYYY-MM-DD                                  midnight UTC
 *     YYYY-MM-DD('T'|'t')hh:mm:ss[(.|,)f...]ZONE   ZONE = Z | z | (+|-)hh[[:]mm]
 * Years 1970-9999, days checked against the month (leap years included),
 * hh 00-23, mm 00-59, ss 00-60 (a leap second counts as :59). The fraction
 * may have any number of digits; milliseconds are kept, the rest truncated.
 * A zone is required with a time: a local time without one is ambiguous.
 * 0, or -1 when invalid (*out_ms untouched). */
int tu_parse_iso(const char *s, int64_t *out_ms);

/* "250ms", "5s", "2m", "1h", "1d", or a bare integer (seconds), into ms
 * (OUT: *out_ms). Digits then at most one unit: no sign, no spaces, no
 * fraction. 0, or -1 when invalid or over INT64_MAX ms. */
int tu_parse_duration_ms(const char *s, int64_t *out_ms);

/* A byte count (OUT: *out): "1048576", "512KiB", "1MiB", "1GiB" (IEC: powers
 * of 1024), "1KB", "1MB", "1GB" (SI: powers of 1000, as the units say), and
 * a "B" suffix on a bare number. Units are case-sensitive. 0, or -1 when
 * invalid or over UINT64_MAX. */
int tu_parse_size(const char *s, uint64_t *out);

#endif
