/*
 * seed: fill a store with attempts through the store layer, for tests that
 * need a large history (unit_store, seed_attempts).
 */
#ifndef HK_TEST_SEED_H
#define HK_TEST_SEED_H

#include <stdbool.h>
#include <stdlib.h>

#include "store.h"

/* Seed attempts the way the dispatcher makes them: claim a set of
 * pending deliveries, record one attempt each (pending again, due at once), claim
 * them again, and so on, spread evenly over one day. Then count them back
 * through the rollup. */
static inline void seed_attempts(struct store *s, long attempts, int64_t day0, long *ok_out)
{
	enum { SET = 1000 };
	struct store_job *jobs = calloc(SET, sizeof(*jobs));
	struct store_result *r = calloc(SET, sizeof(*r));
	char(*paused)[UUID_STR_LEN] = calloc(SET, UUID_STR_LEN);
	struct hk_err err;
	long made = 0, ok = 0;
	int64_t clock = day0;
	while (made < attempts) {
		size_t n = 0, np;
		if (store_claim(s, clock, clock + 1, SET, NULL, jobs, &n, &err) != HK_OK || n == 0)
			break;
		for (size_t k = 0; k < n; k++, made++) {
			bool success = made % 3 != 0;
			ok += success;
			r[k] = (struct store_result){ .delivery_id = jobs[k].delivery_id,
				.endpoint_id = jobs[k].endpoint_id, .lease = jobs[k].lease, .row = jobs[k].row,
				.attempt_number = jobs[k].attempt_count + 1,
				.started_at = day0 + (made * 86400000LL) / attempts, .duration_ms = 1,
				.http_status = success ? 200 : 500, .success = success,
				.status = DELIVERY_PENDING, .next_attempt_at = day0 };
		}
		if (store_record(s, r, n, 0, paused, &np, &err) != HK_OK)
			break;
		for (size_t k = 0; k < n; k++)
			store_job_clear(&jobs[k]);
		clock += 2;
	}
	*ok_out = ok;
	free(jobs);
	free(r);
	free(paused);
}

#endif
