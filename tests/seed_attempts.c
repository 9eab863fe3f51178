/*
 * seed_attempts: give the workspace webhook of org "default" a history of N
 * attempts spread over one UTC day, through the store layer.
 *
 *   seed_attempts DB N DAY_START_MS   → prints "<succeeded> <failed>"
 *
 * Used by the end-to-end test of GET /v1/webhooks/stats over 1,000,000
 * attempts and by the benchmark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "seed.h"
#include "store.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: seed_attempts DB N DAY_START_MS\n");
		return 2;
	}
	long n = atol(argv[2]);
	int64_t day0 = atoll(argv[3]);
	struct store *s;
	struct hk_err err;
	struct store_org org;
	if (store_open(argv[1], NULL, &s, &err) != HK_OK || store_org_get(s, "default", &org, &err) != HK_OK) {
		fprintf(stderr, "seed_attempts: %s\n", err.msg);
		return 1;
	}
	enum { SET = 1000 };
	struct store_publish *p = calloc(SET, sizeof(*p));
	for (int i = 0; i < SET; i++) {
		p[i].org_id = org.id;
		uuid_v7(p[i].event_id);
		p[i].event_type = "seed";
		p[i].body = "{}";
		p[i].body_len = 2;
		p[i].created_at = day0 - 1000;
	}
	long ok = 0;
	if (store_publish_batch(s, p, SET, &err) == HK_OK)
		seed_attempts(s, n, day0, &ok);
	printf("%ld %ld\n", ok, n - ok);
	free(p);
	store_close(s);
	return 0;
}
