/*
 * timeutil: clocks, ISO 8601 times, durations and sizes.
 *
 * Every parser here takes outside input (flags, query parameters) and is
 * fuzzed: each accepts exactly its documented grammar, rejects everything
 * else with -1, and never reads past the string's NUL.
 */
#ifndef HK_TIMEUTIL_H
#define HK_TIMEUTIL_H

#include <stdint.h>

/* Wall clock, ms since the Unix epoch. */
int64_t tu_now_ms(void);
/* Monotonic clock in ms, for durations. */
int64_t tu_mono_ms(void);

#define TU_ISO_LEN 32
/* "2026-05-07T14:00:00Z", or "...:00.123Z" when ms is not a whole second. */
char *tu_format_iso(int64_t ms, char buf[TU_ISO_LEN]);

/* ISO 8601 date-time (T or t separator, optional fraction of any length,
 * Z/z or an offset +hh:mm, +hhmm, +hh) or a date alone (midnight UTC), years
 * 1970-9999. 0, or -1 when invalid (*out_ms untouched). */
int tu_parse_iso(const char *s, int64_t *out_ms);

/* "250ms", "5s", "2m", "1h", "1d", or a bare integer (seconds). */
int tu_parse_duration_ms(const char *s, int64_t *out_ms);

/* "1048576", "512KiB", "1MiB", "1GiB" (powers of 1024), "1KB", "1MB",
 * "1GB" (powers of 1000), "B" suffix allowed. */
int tu_parse_size(const char *s, uint64_t *out);

#endif
