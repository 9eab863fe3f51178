/*
 * ssrf: the address policy. See ssrf.h.
 *
 * Addresses are compared as 16-byte IPv6 values; an IPv4 address is held as
 * its IPv4-mapped form (::ffff:a.b.c.d), so one prefix table serves both.
 */
#include "ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct cidr {
	unsigned char addr[16];
	unsigned bits; /* over the 128-bit form */
};

struct ssrf_allow {
	size_t n;
	struct cidr c[];
};

struct rule {
	const char *prefix;
	unsigned bits;
	const char *reason;
};

/* IPv4 ranges (bits of the IPv4 address), judged on the embedded IPv4. */
static const struct rule v4_rules[] = {
	{ "0.0.0.0", 8, "unspecified" },       { "10.0.0.0", 8, "private" },
	{ "100.64.0.0", 10, "carrier-grade NAT" }, { "127.0.0.0", 8, "loopback" },
	{ "169.254.0.0", 16, "link-local" },   { "172.16.0.0", 12, "private" },
	{ "192.0.0.0", 24, "reserved" },       { "192.0.2.0", 24, "documentation" },
	{ "192.88.99.0", 24, "reserved" },     { "192.168.0.0", 16, "private" },
	{ "198.18.0.0", 15, "benchmarking" },  { "198.51.100.0", 24, "documentation" },
	{ "203.0.113.0", 24, "documentation" }, { "224.0.0.0", 4, "multicast" },
	{ "240.0.0.0", 4, "reserved" },
};

/* IPv6 ranges refused inside 2000::/3 (everything outside it is refused). */
static const struct rule v6_rules[] = {
	{ "2001:db8::", 32, "documentation" }, { "2001::", 23, "reserved" },
	{ "2002::", 16, "6to4" },              { "3fff::", 20, "documentation" },
};

/* Reasons for IPv6 outside 2000::/3, most specific first. */
static const struct rule v6_outside[] = {
	{ "::1", 128, "loopback" },      { "::", 128, "unspecified" },
	{ "fc00::", 7, "unique local" }, { "fe80::", 10, "link-local" },
	{ "fec0::", 10, "site-local" },  { "ff00::", 8, "multicast" },
};

static bool prefix_match(const unsigned char *a, const unsigned char *p, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, p, whole) != 0)
		return false;
	if (!rest)
		return true;
	unsigned char mask = (unsigned char)(0xFF << (8 - rest));
	return (a[whole] & mask) == (p[whole] & mask);
}

static bool v4_match(uint32_t ip, const char *prefix, unsigned bits)
{
	struct in_addr p;
	inet_pton(AF_INET, prefix, &p);
	uint32_t mask = bits ? 0xFFFFFFFFu << (32 - bits) : 0;
	return (ip & mask) == (ntohl(p.s_addr) & mask);
}

static const char *v4_reason(uint32_t ip)
{
	for (size_t i = 0; i < sizeof(v4_rules) / sizeof(v4_rules[0]); i++)
		if (v4_match(ip, v4_rules[i].prefix, v4_rules[i].bits))
			return v4_rules[i].reason;
	return NULL;
}

static uint32_t be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The IPv4 address embedded in a mapped, compatible or NAT64 address. */
static bool embedded_v4(const unsigned char *a, uint32_t *ip)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };
	static const unsigned char zero[12] = { 0 };
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
	    (memcmp(a, zero, 12) == 0 && be32(a + 12) > 1)) {
		*ip = be32(a + 12);
		return true;
	}
	if (memcmp(a, nat64_local, 6) == 0) { /* 64:ff9b:1::/48, RFC 8215: IPv4 in the last 32 bits */
		*ip = be32(a + 12);
		return true;
	}
	return false;
}

static const char *v6_reason(const unsigned char *a)
{
	uint32_t ip;
	if (embedded_v4(a, &ip))
		return v4_reason(ip);
	if ((a[0] & 0xE0) != 0x20) {
		for (size_t i = 0; i < sizeof(v6_outside) / sizeof(v6_outside[0]); i++) {
			unsigned char p[16];
			inet_pton(AF_INET6, v6_outside[i].prefix, p);
			if (prefix_match(a, p, v6_outside[i].bits))
				return v6_outside[i].reason;
		}
		return "reserved";
	}
	for (size_t i = 0; i < sizeof(v6_rules) / sizeof(v6_rules[0]); i++) {
		unsigned char p[16];
		inet_pton(AF_INET6, v6_rules[i].prefix, p);
		if (prefix_match(a, p, v6_rules[i].bits))
			return v6_rules[i].reason;
	}
	return NULL;
}

/* sa as a 16-byte address (IPv4 mapped); false for other families. */
static bool as_v6(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

const char *ssrf_reason(const struct sockaddr *sa)
{
	unsigned char a[16];
	if (!as_v6(sa, a))
		return "not an IP address";
	return v6_reason(a);
}

static bool allowed(const unsigned char *a, const struct ssrf_allow *allow)
{
	for (size_t i = 0; allow && i < allow->n; i++)
		if (prefix_match(a, allow->c[i].addr, allow->c[i].bits))
			return true;
	/* A NAT64 or compatible form is allowed when its IPv4 is. */
	uint32_t ip;
	if (allow && embedded_v4(a, &ip) && a[10] != 0xff) {
		unsigned char m[16] = { [10] = 0xff, [11] = 0xff };
		m[12] = (unsigned char)(ip >> 24);
		m[13] = (unsigned char)(ip >> 16);
		m[14] = (unsigned char)(ip >> 8);
		m[15] = (unsigned char)ip;
		return allowed(m, allow);
	}
	return false;
}

static const char *check_addr(const unsigned char *a, const struct ssrf_allow *allow)
{
	const char *why = v6_reason(a);
	return why && !allowed(a, allow) ? why : NULL;
}

const char *ssrf_check(const struct sockaddr *sa, const struct ssrf_allow *allow)
{
	unsigned char a[16];
	if (!as_v6(sa, a))
		return "not an IP address";
	return check_addr(a, allow);
}

/* Parse an address (v4 or v6, brackets allowed) into 16 bytes; *v4 says which. */
static bool parse_addr(const char *s, unsigned char out[16], bool *v4)
{
	char buf[64];
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	struct in_addr a4;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return true;
	}
	*v4 = false;
	return inet_pton(AF_INET6, buf, out) == 1;
}

int ssrf_check_literal(const char *host, const struct ssrf_allow *allow, const char **reason)
{
	unsigned char a[16];
	bool v4;
	if (!parse_addr(host, a, &v4))
		return 0;
	*reason = check_addr(a, allow);
	return 1;
}

static int parse_cidr(const char *item, struct cidr *c)
{
	char buf[80];
	snprintf(buf, sizeof(buf), "%s", item);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		char *end;
		*slash = '\0';
		bits = strtol(slash + 1, &end, 10);
		if (*end || slash[1] == '\0' || bits < 0)
			return -1;
	}
	bool v4;
	if (!parse_addr(buf, c->addr, &v4))
		return -1;
	long max = v4 ? 32 : 128;
	if (bits > max)
		return -1;
	c->bits = (unsigned)((bits < 0 ? max : bits) + (v4 ? 96 : 0));
	return 0;
}

int ssrf_allow_parse(const char *csv, struct ssrf_allow **out, char *errbuf, size_t errcap)
{
	size_t items = 1;
	for (const char *p = csv; p && *p; p++)
		items += *p == ',';
	struct ssrf_allow *a = calloc(1, sizeof(*a) + items * sizeof(struct cidr));
	if (!a) {
		snprintf(errbuf, errcap, "out of memory");
		return -1;
	}
	const char *p = csv;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[80];
		if (len == 0 || len >= sizeof(item)) {
			snprintf(errbuf, errcap, "empty or overlong CIDR in the list");
			free(a);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (parse_cidr(item, &a->c[a->n]) != 0) {
			snprintf(errbuf, errcap, "invalid CIDR '%s'", item);
			free(a);
			return -1;
		}
		a->n++;
		p = comma ? comma + 1 : NULL;
	}
	*out = a;
	return 0;
}

void ssrf_allow_free(struct ssrf_allow *a)
{
	free(a);
}
