/*
 * unit_ssrf: the address policy over a table of addresses, every boundary of
 * every refused range and the address just outside it, IPv4 and IPv6,
 * including IPv4 inside mapped, compatible and NAT64 forms, and the allow list.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ssrf.h"
#include "unit.h"

struct row {
	const char *addr;
	int refused; /* with no allow list */
};

static const struct row table[] = {
	/* 0/8 */ { "0.0.0.0", 1 }, { "0.255.255.255", 1 }, { "1.0.0.0", 0 },
	/* 10/8 */ { "9.255.255.255", 0 }, { "10.0.0.0", 1 }, { "10.255.255.255", 1 }, { "11.0.0.0", 0 },
	/* 100.64/10 */ { "100.63.255.255", 0 }, { "100.64.0.0", 1 }, { "100.127.255.255", 1 }, { "100.128.0.0", 0 },
	/* 127/8 */ { "126.255.255.255", 0 }, { "127.0.0.0", 1 }, { "127.0.0.1", 1 }, { "127.255.255.255", 1 }, { "128.0.0.0", 0 },
	/* 169.254/16 */ { "169.253.255.255", 0 }, { "169.254.0.0", 1 }, { "169.254.169.254", 1 }, { "169.254.255.255", 1 }, { "169.255.0.0", 0 },
	/* 172.16/12 */ { "172.15.255.255", 0 }, { "172.16.0.0", 1 }, { "172.31.255.255", 1 }, { "172.32.0.0", 0 },
	/* 192.0.0/24 */ { "191.255.255.255", 0 }, { "192.0.0.0", 1 }, { "192.0.0.255", 1 }, { "192.0.1.0", 0 },
	/* 192.0.2/24 */ { "192.0.1.255", 0 }, { "192.0.2.0", 1 }, { "192.0.2.255", 1 }, { "192.0.3.0", 0 },
	/* 192.88.99/24 */ { "192.88.98.255", 0 }, { "192.88.99.0", 1 }, { "192.88.99.255", 1 }, { "192.88.100.0", 0 },
	/* 192.168/16 */ { "192.167.255.255", 0 }, { "192.168.0.0", 1 }, { "192.168.255.255", 1 }, { "192.169.0.0", 0 },
	/* 198.18/15 */ { "198.17.255.255", 0 }, { "198.18.0.0", 1 }, { "198.19.255.255", 1 }, { "198.20.0.0", 0 },
	/* 198.51.100/24 */ { "198.51.99.255", 0 }, { "198.51.100.0", 1 }, { "198.51.100.255", 1 }, { "198.51.101.0", 0 },
	/* 203.0.113/24 */ { "203.0.112.255", 0 }, { "203.0.113.0", 1 }, { "203.0.113.255", 1 }, { "203.0.114.0", 0 },
	/* 224/4, 240/4 */ { "223.255.255.255", 0 }, { "224.0.0.0", 1 }, { "239.255.255.255", 1 },
	{ "240.0.0.0", 1 }, { "255.255.255.255", 1 },
	/* public */ { "8.8.8.8", 0 }, { "1.1.1.1", 0 }, { "93.184.216.34", 0 },
	/* IPv6: only 2000::/3 is routable */
	{ "::", 1 }, { "::1", 1 }, { "::2", 1 }, { "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2000::", 0 }, { "2001::", 1 }, { "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2001:200::", 0 }, { "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0 }, { "2001:db8::", 1 },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1 }, { "2001:db9::", 0 },
	{ "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0 }, { "2002::", 1 },
	{ "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 }, { "2003::", 0 },
	{ "2606:4700:4700::1111", 0 }, { "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0 }, { "3fff::", 1 },
	{ "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", 1 }, { "3fff:1000::", 0 },
	{ "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0 }, { "4000::", 1 },
	{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 }, { "fc00::", 1 }, { "fd12:3456::1", 1 },
	{ "fe80::1", 1 }, { "febf:ffff::", 1 }, { "fec0::1", 1 }, { "ff02::1", 1 },
	/* IPv4 inside IPv6: judged by the IPv4 */
	{ "::ffff:127.0.0.1", 1 }, { "::ffff:10.0.0.1", 1 }, { "::ffff:169.254.169.254", 1 },
	{ "::ffff:8.8.8.8", 0 }, { "::127.0.0.1", 1 }, { "::8.8.8.8", 0 },
	{ "64:ff9b::127.0.0.1", 1 }, { "64:ff9b::10.1.2.3", 1 }, { "64:ff9b::8.8.8.8", 0 },
	{ "64:ff9b:1::a9fe:a9fe", 1 },
};

static int to_sockaddr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct sockaddr_storage ss;
		char name[96];
		snprintf(name, sizeof(name), "%s is %s", table[i].addr, table[i].refused ? "refused" : "allowed");
		if (to_sockaddr(table[i].addr, &ss) != 0) {
			CHECK(0, name);
			continue;
		}
		const char *why = ssrf_check((struct sockaddr *)&ss, NULL);
		CHECK((why != NULL) == table[i].refused, name);
	}
}

static void test_allow_list(void)
{
	struct ssrf_allow *a = NULL;
	char err[128];
	struct sockaddr_storage ss;
	CHECK(ssrf_allow_parse("127.0.0.0/8,::1/128,10.1.2.3", &a, err, sizeof(err)) == 0, "allow list parses");
	to_sockaddr("127.0.0.1", &ss);
	CHECK(ssrf_check((struct sockaddr *)&ss, a) == NULL, "127.0.0.1 allowed by 127.0.0.0/8");
	to_sockaddr("::ffff:127.0.0.1", &ss);
	CHECK(ssrf_check((struct sockaddr *)&ss, a) == NULL, "::ffff:127.0.0.1 allowed by 127.0.0.0/8");
	to_sockaddr("64:ff9b::127.0.0.2", &ss);
	CHECK(ssrf_check((struct sockaddr *)&ss, a) == NULL, "NAT64 of 127.0.0.2 allowed by 127.0.0.0/8");
	to_sockaddr("::1", &ss);
	CHECK(ssrf_check((struct sockaddr *)&ss, a) == NULL, "::1 allowed by ::1/128");
	to_sockaddr("10.1.2.3", &ss);
	CHECK(ssrf_check((struct sockaddr *)&ss, a) == NULL, "a bare address allows one host");
	to_sockaddr("10.1.2.4", &ss);
	CHECK(ssrf_check((struct sockaddr *)&ss, a) != NULL, "10.1.2.4 still refused");
	to_sockaddr("169.254.169.254", &ss);
	CHECK_STR(ssrf_check((struct sockaddr *)&ss, a), "link-local", "metadata address still refused");
	ssrf_allow_free(a);
	const char *bad[] = { "10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/", "1.2.3.4,,5.6.7.8", "/8" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "allow list '%s' refused", bad[i]);
		CHECK(ssrf_allow_parse(bad[i], &a, err, sizeof(err)) != 0, name);
	}
	CHECK(ssrf_allow_parse(NULL, &a, err, sizeof(err)) == 0, "no allow list is an empty one");
	ssrf_allow_free(a);
}

static void test_literals(void)
{
	const char *why;
	CHECK(ssrf_check_literal("127.0.0.1", NULL, &why) == 1 && why, "literal 127.0.0.1 refused");
	CHECK(ssrf_check_literal("[::1]", NULL, &why) == 1 && why, "literal [::1] refused");
	CHECK(ssrf_check_literal("8.8.8.8", NULL, &why) == 1 && !why, "literal 8.8.8.8 allowed");
	CHECK(ssrf_check_literal("example.com", NULL, &why) == 0, "a host name is not a literal");
}

int main(void)
{
	test_table();
	test_allow_list();
	test_literals();
	return unit_done();
}
