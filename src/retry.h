/*
 * retry: when the next attempt of a delivery is due (spec "Delivery rules").
 *
 * A schedule is the list of delays after attempts 1, 2, ...: the default
 * 5s,30s,2m,10m,30m,1h,3h,6h,12h makes 10 attempts in all. Each delay gets up
 * to +10% random jitter so the retries of a burst do not stampede a receiver
 * that has just come back. The random number is the caller's, so that the
 * jitter is testable. Retry-After parsing lives here too; the policy around
 * it (honoured on 429/503 when longer, capped at 1 h) is the caller's.
 * Pure functions: thread-safe, no allocation.
 */
#ifndef HK_RETRY_H
#define HK_RETRY_H

#include <stddef.h>
#include <stdint.h>

#define RETRY_MAX_STEPS 32

struct retry_schedule {
	int n;                               /* delays in use, 0..RETRY_MAX_STEPS */
	int64_t delay_ms[RETRY_MAX_STEPS];   /* delay_ms[i]: after attempt i + 1 */
};

/* The default schedule: n = 9, 5s,30s,2m,10m,30m,1h,3h,6h,12h. */
void retry_schedule_default(struct retry_schedule *s);

/* Parse "5s,30s,2m" (each delay as tu_parse_duration_ms takes it, spaces
 * around items ignored, 0 allowed: "retry at once") into *s. "" (or NULL)
 * means no retries: n = 0, one attempt in all. Refused: an empty item
 * ("5s,,1m", "5s,"), junk, more than RETRY_MAX_STEPS delays. 0; or -1 with a
 * message in errbuf (when non-NULL) and *s untouched. */
int retry_schedule_parse(const char *csv, struct retry_schedule *s, char *errbuf, size_t errcap);

/* The delay before the next attempt once attempts_made attempts (1-based)
 * have failed: delay_ms[attempts_made - 1] plus a jitter of
 * floor(delay / 10 * random / 2^32), i.e. 0 to just under +10% (saturating,
 * never overflowing). -1 when the schedule is exhausted (attempts_made > n)
 * or attempts_made < 1. */
int64_t retry_delay_ms(const struct retry_schedule *s, int attempts_made, uint32_t random);

/* A Retry-After header value (may be NULL; surrounding spaces, tabs, CR and
 * LF ignored): delta-seconds (digits only; past 2^31 seconds it saturates
 * there, as RFC 9111 says of delta-seconds) or an HTTP-date in any of the
 * three forms of RFC 9110 (IMF-fixdate "Wed, 21 Oct 2015 07:28:00 GMT",
 * RFC 850 "Wednesday, 21-Oct-15 07:28:00 GMT", asctime "Wed Oct 21 07:28:00
 * 2015"). Returns the wait in ms from now_ms (0 for a date in the past), or
 * -1 when unparsable. */
int64_t retry_after_ms(const char *value, int64_t now_ms);

#endif
