/*
 * unit_retry: the retry schedule, jitter, and Retry-After.
 */
#include <stdint.h>

#include "retry.h"
#include "unit.h"

int main(void)
{
	struct retry_schedule s;
	char err[128];
	retry_schedule_default(&s);
	CHECK_INT(s.n, 9, "default schedule: 9 delays, 10 attempts");
	CHECK_INT(retry_delay_ms(&s, 1, 0), 5000, "after attempt 1: 5s");
	CHECK_INT(retry_delay_ms(&s, 9, 0), 43200000, "after attempt 9: 12h");
	CHECK_INT(retry_delay_ms(&s, 10, 0), -1, "after attempt 10: exhausted");
	CHECK_INT(retry_delay_ms(&s, 0, 0), -1, "attempt 0 is not a thing");
	int64_t top = retry_delay_ms(&s, 1, UINT32_MAX);
	CHECK(top > 5000 && top <= 5500, "jitter adds at most 10%");
	CHECK(retry_schedule_parse("1s,250ms,2m", &s, err, sizeof(err)) == 0 && s.n == 3 &&
	      s.delay_ms[1] == 250 && s.delay_ms[2] == 120000, "parse a schedule");
	CHECK(retry_schedule_parse("", &s, err, sizeof(err)) == 0 && s.n == 0, "empty: no retries");
	CHECK(retry_schedule_parse("5s,,1m", &s, err, sizeof(err)) != 0, "empty item refused");
	CHECK(retry_schedule_parse("5s,", &s, err, sizeof(err)) != 0, "trailing comma refused");
	CHECK(retry_schedule_parse("5 s", &s, err, sizeof(err)) != 0, "junk refused");
	CHECK(retry_schedule_parse("1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,"
	                           "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s", &s, err, sizeof(err)) != 0,
	      "more than 32 delays refused");
	int64_t now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
	CHECK_INT(retry_after_ms("120", now), 120000, "delta-seconds");
	CHECK_INT(retry_after_ms(" 2\r\n", now), 2000, "header whitespace and CRLF");
	CHECK_INT(retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000, "IMF-fixdate");
	CHECK_INT(retry_after_ms("Wednesday, 21-Oct-15 07:28:10 GMT", now), 10000, "RFC 850 date");
	CHECK_INT(retry_after_ms("Wed Oct 21 07:29:00 2015", now), 60000, "asctime date");
	CHECK_INT(retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", now), 0, "a past date is now");
	CHECK_INT(retry_after_ms("soon", now), -1, "junk refused");
	CHECK_INT(retry_after_ms("-5", now), -1, "negative refused");
	CHECK_INT(retry_after_ms("", now), -1, "empty refused");
	CHECK_INT(retry_after_ms("99999999999999999999", now), -1, "overflow refused");
	return unit_done();
}
