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
	{ "64:ff9b:1::a9fe:a9fe", 1 }, { "64:ff9b:1::808:808", 0 }, { "64:ff9b:1:ffff::7f00:1", 1 },
	{ "64:ff9b:2::808:808", 1 }, { "::ffff:0.0.0.0", 1 }, { "::ffff:100.64.0.1", 1 },
	{ "::ffff:1.0.0.0", 0 }, { "::ffff:224.0.0.1", 1 }, { "::ffff:203.0.114.1", 0 },
	/* 6to4 is refused whole, whatever the IPv4 inside */
	{ "2002:7f00:1::", 1 }, { "2002:808:808::1", 1 },
	/* more of the space outside 2000::/3 */
	{ "::1:0:0:1", 1 }, { "100::1", 1 }, { "fe7f:ffff::", 1 }, { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2a00:1450:4001:80b::200e", 0 },
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

static void test_reasons(void)
{
	static const struct { const char *addr, *reason; } r[] = {
		{ "0.1.2.3", "unspecified" }, { "10.1.2.3", "private" }, { "100.64.1.1", "carrier-grade NAT" },
		{ "127.0.0.1", "loopback" }, { "169.254.169.254", "link-local" }, { "172.20.0.1", "private" },
		{ "192.0.0.8", "reserved" }, { "192.0.2.1", "documentation" }, { "198.19.0.1", "benchmarking" },
		{ "224.0.0.251", "multicast" }, { "250.1.1.1", "reserved" }, { "255.255.255.255", "broadcast" },
		{ "::", "unspecified" }, { "::1", "loopback" }, { "fd00::1", "unique local" },
		{ "fe80::1", "link-local" }, { "fec0::1", "site-local" }, { "ff02::1", "multicast" },
		{ "2001:db8::1", "documentation" }, { "2002::1", "6to4" }, { "2001::1", "reserved" },
		{ "4000::1", "reserved" }, { "::ffff:127.0.0.1", "loopback" }, { "64:ff9b::a00:1", "private" },
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		struct sockaddr_storage ss;
		char name[96];
		snprintf(name, sizeof(name), "%s is refused as %s", r[i].addr, r[i].reason);
		to_sockaddr(r[i].addr, &ss);
		CHECK_STR(ssrf_reason((struct sockaddr *)&ss), r[i].reason, name);
	}
	struct sockaddr_storage ss;
	to_sockaddr("8.8.8.8", &ss);
	CHECK(ssrf_reason((struct sockaddr *)&ss) == NULL, "8.8.8.8 has no reason");
	ss.ss_family = AF_UNIX;
	CHECK_STR(ssrf_check((struct sockaddr *)&ss, NULL), "not an IP address", "AF_UNIX refused");
	CHECK_STR(ssrf_reason(NULL), "not an IP address", "NULL refused");
}

/* Whether addr is allowed by the list csv. */
static int allowed_by(const char *csv, const char *addr)
{
	struct ssrf_allow *a = NULL;
	char err[128];
	struct sockaddr_storage ss;
	if (ssrf_allow_parse(csv, &a, err, sizeof(err)) != 0 || to_sockaddr(addr, &ss) != 0) {
		ssrf_allow_free(a);
		return -1;
	}
	int ok = ssrf_check((struct sockaddr *)&ss, a) == NULL;
	ssrf_allow_free(a);
	return ok;
}

static void test_allow_forms(void)
{
	CHECK_INT(allowed_by(" 127.0.0.0/8 , ::1 ", "::1"), 1, "spaces around items ignored");
	CHECK_INT(allowed_by("[::1]/128", "::1"), 1, "a bracketed IPv6 CIDR");
	CHECK_INT(allowed_by("::ffff:10.0.0.0/104", "10.9.9.9"), 1, "a mapped CIDR allows the IPv4");
	CHECK_INT(allowed_by("10.0.0.0/8", "64:ff9b::10.2.3.4"), 1, "an IPv4 CIDR allows its NAT64 form");
	CHECK_INT(allowed_by("10.0.0.0/8", "::10.2.3.4"), 1, "  ... and its compatible form");
	CHECK_INT(allowed_by("10.9.9.9/8", "10.1.1.1"), 1, "host bits under the mask ignored");
	CHECK_INT(allowed_by("0.0.0.0/0", "192.168.1.1"), 1, "0.0.0.0/0 allows all IPv4");
	CHECK_INT(allowed_by("0.0.0.0/0", "::1"), 0, "  ... but not IPv6 loopback");
	CHECK_INT(allowed_by("::/0", "fe80::1"), 1, "::/0 allows everything");
	CHECK_INT(allowed_by("fd00::/8", "fd00::1"), 1, "a unique local range");
	CHECK_INT(allowed_by("fd00::/8", "fc00::1"), 0, "  ... and not its neighbour");
	CHECK_INT(allowed_by("127.0.0.1", "127.0.0.2"), 0, "a bare address is one host");
	CHECK_INT(allowed_by("", "127.0.0.1"), 0, "an empty list allows nothing refused");
	struct ssrf_allow *a = (struct ssrf_allow *)&a;
	char err[128] = "";
	CHECK(ssrf_allow_parse("10.0.0.0/8,bogus/8", &a, err, sizeof(err)) != 0 &&
	      a == (struct ssrf_allow *)&a && strstr(err, "bogus") != NULL,
	      "a bad item is named, *out untouched");
	static const char *const bad[] = {
		"10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/8,", ",10.0.0.0/8", " , ", "10.0.0.0/0008",
		"[10.0.0.0]/8x", "1.2.3.4/32/1", "1.2.3", "::1/-1", "example.com", "0x7f.1",
		"127.0.0.0/8 10.0.0.0/8",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "allow list '%s' refused", bad[i]);
		CHECK(ssrf_allow_parse(bad[i], &a, NULL, 0) != 0, name);
	}
}

static void test_literals(void)
{
	static const struct { const char *host; int literal, refused; } t[] = {
		{ "127.0.0.1", 1, 1 }, { "[::1]", 1, 1 }, { "::1", 1, 1 }, { "8.8.8.8", 1, 0 },
		{ "[2606:4700:4700::1111]", 1, 0 }, { "127.1", 1, 1 }, { "0x7f.1", 1, 1 },
		{ "2130706433", 1, 1 }, { "0177.0.0.1", 1, 1 }, { "127.0.0.1.", 1, 1 }, { "8.8.8.8.", 1, 0 },
		{ "134744072", 1, 0 }, { "[fe80::1%eth0]", 1, 1 }, { "fe80::1%25eth0", 1, 1 },
		{ "[::ffff:127.0.0.1]", 1, 1 }, { "example.com", 0, 0 }, { "deadbeef", 0, 0 },
		{ "", 0, 0 }, { "[]", 0, 0 }, { "[127.0.0.1]", 0, 0 }, { "1.2.3.4 x", 0, 0 },
		{ "1.2.3.4.5", 0, 0 }, { "4294967296", 0, 0 }, { "127.0.0.1..", 0, 0 }, { ".", 0, 0 },
		{ "[::1", 0, 0 }, { "::1]", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *why = "unset";
		char name[96];
		int lit = ssrf_check_literal(t[i].host, NULL, &why);
		snprintf(name, sizeof(name), "literal '%s': %s", t[i].host,
		         !t[i].literal ? "not a literal" : t[i].refused ? "refused" : "allowed");
		CHECK(lit == t[i].literal && (!lit || (why != NULL) == t[i].refused), name);
	}
	struct ssrf_allow *a = NULL;
	ssrf_allow_parse("127.0.0.0/8", &a, NULL, 0);
	const char *why = "unset";
	CHECK(ssrf_check_literal("127.1", a, &why) == 1 && why == NULL, "literal 127.1 allowed by 127/8");
	CHECK(ssrf_check_literal(NULL, a, &why) == 0, "NULL is not a literal");
	ssrf_allow_free(a);
}

/* Random and mutated text through the parsers: ASan/UBSan judge. */
static void test_fuzz(void)
{
	static const char alphabet[] = "0123456789abcdefx.:/,[]% fF-";
	unsigned seed = 12345;
	char buf[48];
	for (int i = 0; i < 20000; i++) {
		size_t n = 0, len = (seed = seed * 1103515245 + 12345) >> 16 & 31;
		for (; n < len; n++) {
			seed = seed * 1103515245 + 12345;
			buf[n] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		buf[n] = '\0';
		struct ssrf_allow *a = NULL;
		const char *why;
		if (ssrf_allow_parse(buf, &a, NULL, 0) == 0)
			ssrf_allow_free(a);
		ssrf_check_literal(buf, NULL, &why);
	}
	CHECK(1, "20000 random strings parsed without a fault");
}

int main(void)
{
	test_table();
	test_reasons();
	test_allow_list();
	test_allow_forms();
	test_literals();
	test_fuzz();
	return unit_done();
}
