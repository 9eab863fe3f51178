/*
 * unit_curlpoll: which multi handle a URL's transfers go to, and that a
 * curlpoll makes and frees its multi handles. What the loop does with them
 * is tested end to end (tests/test_connections.py).
 */
#include <stdio.h>

#include "curlpoll.h"
#include "unit.h"

static void test_one_host_one_multi(void)
{
	unsigned m = curlpoll_multi_for("https://hooks.example.com/a");
	CHECK_INT(curlpoll_multi_for("https://hooks.example.com/b/c?d=e"), m, "another path, same multi");
	CHECK_INT(curlpoll_multi_for("https://HOOKS.Example.COM/a"), m, "the host in capitals, same multi");
	CHECK_INT(curlpoll_multi_for("https://hooks.example.com?x"), m, "a query straight after the host");
	CHECK_INT(curlpoll_multi_for("https://hooks.example.com#f"), m, "a fragment straight after the host");
	CHECK(curlpoll_multi_for("https://hooks.example.com:8443/a") < CURLPOLL_MULTIS, "another port, a valid multi");
}

/* tests/test_connections.py computes the choice itself, to put a hanging
 * listener on the same multi handle as a healthy receiver: these values
 * keep its copy honest. */
static void test_the_choice_is_fnv1a(void)
{
	CHECK_INT(curlpoll_multi_for("https://127.0.0.1:8443/x"), 5, "127.0.0.1:8443");
	CHECK_INT(curlpoll_multi_for("https://example.com/hook"), 6, "example.com");
	CHECK_INT(curlpoll_multi_for("https://127.0.0.1:40001/"), 11, "127.0.0.1:40001");
}

/* Beside 2,000 hosts, each multi's connection cache (which libcurl 7.88
 * walks as each transfer ends) holds about its sixteenth of them. */
static void test_hosts_spread(void)
{
	unsigned n[CURLPOLL_MULTIS] = { 0 };
	char url[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(url, sizeof(url), "https://127.0.%d.%d:8443/%d", i / 250, i % 250 + 2, i);
		n[curlpoll_multi_for(url)]++;
	}
	unsigned lo = n[0], hi = n[0];
	for (int i = 1; i < CURLPOLL_MULTIS; i++) {
		lo = n[i] < lo ? n[i] : lo;
		hi = n[i] > hi ? n[i] : hi;
	}
	char name[96];
	snprintf(name, sizeof(name), "2,000 addresses, 62-250 on each multi (%u-%u)", lo, hi);
	CHECK(lo >= 2000 / CURLPOLL_MULTIS / 2 && hi <= 2000 / CURLPOLL_MULTIS * 2, name);
}

static void test_new_and_free(void)
{
	struct curlpoll *p = curlpoll_new(1024);
	CHECK(p != NULL, "curlpoll_new");
	if (!p)
		return;
	int distinct = 1;
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++)
		for (unsigned j = 0; j < i; j++)
			distinct &= curlpoll_multi(p, i) && curlpoll_multi(p, i) != curlpoll_multi(p, j);
	CHECK(distinct, "a multi handle of its own each");
	curlpoll_wakeup(p);
	curlpoll_run(p, 1000); /* returns at once: woken */
	curlpoll_free(p);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_one_host_one_multi();
	test_the_choice_is_fnv1a();
	test_hosts_spread();
	test_new_and_free();
	curl_global_cleanup();
	return unit_done();
}
