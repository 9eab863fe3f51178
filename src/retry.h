/*
 * retry: when the next attempt of a delivery is due.
 *
 * A schedule is the list of delays after attempts 1, 2, ...: the default
 * 5s,30s,2m,10m,30m,1h,3h,6h,12h makes 10 attempts in all. Each delay gets up
 * to +10% random jitter so retries of a burst do not stampede a receiver.
 */
#ifndef HK_RETRY_H
#define HK_RETRY_H

#include <stddef.h>
#include <stdint.h>

#define RETRY_MAX_STEPS 32

struct retry_schedule {
	int n;
	int64_t delay_ms[RETRY_MAX_STEPS];
};

void retry_schedule_default(struct retry_schedule *s);

/* "5s,30s,2m" (durations as tu_parse_duration_ms takes them). An empty
 * string means no retries. 0, or -1 with a message in errbuf. */
int retry_schedule_parse(const char *csv, struct retry_schedule *s, char *errbuf, size_t errcap);

/* The delay after attempts_made attempts (1-based), plus jitter of up to 10%
 * drawn from random; -1 when the schedule is exhausted. */
int64_t retry_delay_ms(const struct retry_schedule *s, int attempts_made, uint32_t random);

/* A Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850
 * or asctime). ms from now (0 for a past date), or -1 when unparsable. */
int64_t retry_after_ms(const char *value, int64_t now_ms);

#endif
