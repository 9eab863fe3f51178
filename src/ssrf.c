/*
 * ssrf: the address policy. See ssrf.h.
 *
 * Every address is first made a 16-byte IPv6 value, an IPv4 address being
 * held as its mapped form ::ffff:a.b.c.d, so one prefix match serves the
 * allow list of both families. Judging goes the other way: an IPv6 address
 * that carries an IPv4 one is unwrapped and judged by the IPv4 table, the
 * rest by the IPv6 tables. The tables are numeric constants: the check runs
 * on every connect and must not parse strings.
 */
#include "ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "csvlist.h"

struct cidr {
	unsigned char addr[16];
	unsigned bits; /* over the 128-bit form */
};

struct ssrf_allow {
	size_t n;
	struct cidr c[];
};

#define V4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static const struct {
	uint32_t net;
	unsigned bits;
	const char *reason;
} v4_rules[] = {
	{ V4(0, 0, 0, 0), 8, "unspecified" },       { V4(10, 0, 0, 0), 8, "private" },
	{ V4(100, 64, 0, 0), 10, "carrier-grade NAT" }, { V4(127, 0, 0, 0), 8, "loopback" },
	{ V4(169, 254, 0, 0), 16, "link-local" },  { V4(172, 16, 0, 0), 12, "private" },
	{ V4(192, 0, 0, 0), 24, "reserved" },      { V4(192, 0, 2, 0), 24, "documentation" },
	{ V4(192, 88, 99, 0), 24, "reserved" },    { V4(192, 168, 0, 0), 16, "private" },
	{ V4(198, 18, 0, 0), 15, "benchmarking" }, { V4(198, 51, 100, 0), 24, "documentation" },
	{ V4(203, 0, 113, 0), 24, "documentation" }, { V4(224, 0, 0, 0), 4, "multicast" },
	{ V4(255, 255, 255, 255), 32, "broadcast" }, { V4(240, 0, 0, 0), 4, "reserved" },
};

struct v6_rule {
	unsigned char prefix[16];
	unsigned bits;
	const char *reason;
};

/* Refused inside 2000::/3, the only routable IPv6 space. */
static const struct v6_rule v6_inside[] = {
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation" },
	{ { 0x20, 0x01 }, 23, "reserved" },
	{ { 0x20, 0x02 }, 16, "6to4" },
	{ { 0x3f, 0xff }, 20, "documentation" },
};

/* Outside 2000::/3 all is refused; these only name the reason. */
static const struct v6_rule v6_outside[] = {
	{ { [15] = 1 }, 128, "loopback" },    { { 0 }, 128, "unspecified" },
	{ { 0xfc }, 7, "unique local" },      { { 0xfe, 0x80 }, 10, "link-local" },
	{ { 0xfe, 0xc0 }, 10, "site-local" }, { { 0xff }, 8, "multicast" },
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

static const char *v4_reason(uint32_t ip)
{
	for (size_t i = 0; i < sizeof(v4_rules) / sizeof(v4_rules[0]); i++) {
		uint32_t mask = 0xFFFFFFFFu << (32 - v4_rules[i].bits);
		if ((ip & mask) == v4_rules[i].net)
			return v4_rules[i].reason;
	}
	return NULL;
}

static const char *v6_table(const unsigned char *a, const struct v6_rule *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (prefix_match(a, t[i].prefix, t[i].bits))
			return t[i].reason;
	return NULL;
}

static uint32_t be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The IPv4 address carried by a mapped, compatible or NAT64 address. */
static bool embedded_v4(const unsigned char *a, uint32_t *ip)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };
	static const unsigned char zero[12] = { 0 };
	bool carries = memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
	               memcmp(a, nat64_local, 6) == 0 ||
	               (memcmp(a, zero, 12) == 0 && be32(a + 12) > 1); /* not :: or ::1 */
	if (carries)
		*ip = be32(a + 12);
	return carries;
}

static const char *addr_reason(const unsigned char *a)
{
	uint32_t ip;
	if (embedded_v4(a, &ip))
		return v4_reason(ip);
	if ((a[0] & 0xE0) != 0x20) {
		const char *why = v6_table(a, v6_outside, sizeof(v6_outside) / sizeof(v6_outside[0]));
		return why ? why : "reserved";
	}
	return v6_table(a, v6_inside, sizeof(v6_inside) / sizeof(v6_inside[0]));
}

static void mapped_v4(uint32_t ip, unsigned char out[16])
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	out[12] = (unsigned char)(ip >> 24);
	out[13] = (unsigned char)(ip >> 16);
	out[14] = (unsigned char)(ip >> 8);
	out[15] = (unsigned char)ip;
}

/* sa as a 16-byte address (IPv4 mapped); false for other families. */
static bool sockaddr_bytes(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa && sa->sa_family == AF_INET) {
		mapped_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), out);
		return true;
	}
	if (sa && sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static bool in_list(const unsigned char *a, const struct ssrf_allow *allow)
{
	for (size_t i = 0; allow && i < allow->n; i++)
		if (prefix_match(a, allow->c[i].addr, allow->c[i].bits))
			return true;
	return false;
}

/* In the list as given, or by the IPv4 address it carries. */
static bool allowed(const unsigned char *a, const struct ssrf_allow *allow)
{
	if (in_list(a, allow))
		return true;
	uint32_t ip;
	unsigned char m[16];
	if (!embedded_v4(a, &ip))
		return false;
	mapped_v4(ip, m);
	return in_list(m, allow);
}

static const char *check_bytes(const unsigned char *a, const struct ssrf_allow *allow)
{
	const char *why = addr_reason(a);
	return why && !allowed(a, allow) ? why : NULL;
}

const char *ssrf_reason(const struct sockaddr *sa)
{
	unsigned char a[16];
	return sockaddr_bytes(sa, a) ? addr_reason(a) : "not an IP address";
}

const char *ssrf_check(const struct sockaddr *sa, const struct ssrf_allow *allow)
{
	unsigned char a[16];
	return sockaddr_bytes(sa, a) ? check_bytes(a, allow) : "not an IP address";
}

/* Strict address text (dotted-quad IPv4, or IPv6 with optional brackets)
 * into 16 bytes; *v4 says which. The forms an allow list may use. */
static bool parse_strict(const char *s, unsigned char out[16], bool *v4)
{
	char buf[INET6_ADDRSTRLEN + 2];
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
		mapped_v4(ntohl(a4.s_addr), out);
		*v4 = true;
		return true;
	}
	*v4 = false;
	return inet_pton(AF_INET6, buf, out) == 1;
}

/* A host as the resolver would read it: IPv6 (brackets and "%zone" dropped),
 * or IPv4 in any inet_aton form, a trailing dot dropped (curl strips it
 * before resolving, so "127.0.0.1." reaches 127.0.0.1). */
static bool parse_host(const char *host, unsigned char out[16])
{
	char buf[64];
	size_t n = strlen(host);
	bool bracket = n >= 2 && host[0] == '[' && host[n - 1] == ']';
	if (bracket) {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, host, n);
	buf[n] = '\0';
	char *zone = strchr(buf, '%');
	if (zone && strchr(buf, ':'))
		*zone = '\0';
	if (inet_pton(AF_INET6, buf, out) == 1)
		return true;
	if (bracket)
		return false;
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
	/* inet_aton would also take "1.2.3.4 junk": only hand it number text. */
	struct in_addr a4;
	if (!buf[0] || buf[strspn(buf, "0123456789abcdefABCDEFxX.")] || inet_aton(buf, &a4) == 0)
		return false;
	mapped_v4(ntohl(a4.s_addr), out);
	return true;
}

int ssrf_check_literal(const char *host, const struct ssrf_allow *allow, const char **reason)
{
	unsigned char a[16];
	if (!host || !parse_host(host, a))
		return 0;
	*reason = check_bytes(a, allow);
	return 1;
}

/* "addr" or "addr/len" (len 1-3 digits, at most 32 or 128) into *c. */
static int parse_cidr(const char *text, struct cidr *c)
{
	char item[80];
	snprintf(item, sizeof(item), "%s", text);
	char *slash = strchr(item, '/');
	int bits = -1;
	if (slash) {
		*slash = '\0';
		const char *len = slash + 1;
		size_t nd = strspn(len, "0123456789");
		if (nd == 0 || nd > 3 || len[nd])
			return -1;
		bits = atoi(len);
	}
	bool v4;
	if (!parse_strict(item, c->addr, &v4))
		return -1;
	int max = v4 ? 32 : 128;
	if (bits > max)
		return -1;
	c->bits = (unsigned)((bits < 0 ? max : bits) + (v4 ? 96 : 0));
	return 0;
}

/* Free a, write the message (when there is a buffer), return -1. */
__attribute__((format(printf, 4, 5)))
static int fail(struct ssrf_allow *a, char *errbuf, size_t errcap, const char *fmt, ...)
{
	free(a);
	if (errbuf && errcap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errbuf, errcap, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int ssrf_allow_parse(const char *csv, struct ssrf_allow **out, char *errbuf, size_t errcap)
{
	size_t items = 1;
	for (const char *p = csv; p && *p; p++)
		items += *p == ',';
	struct ssrf_allow *a = calloc(1, sizeof(*a) + items * sizeof(struct cidr));
	if (!a)
		return fail(NULL, errbuf, errcap, "out of memory");
	struct csvlist l;
	enum csvlist_step st;
	char item[80];
	csvlist_start(&l, csv);
	while ((st = csvlist_next(&l, item, sizeof(item))) != CSVLIST_END) {
		if (st == CSVLIST_TRAILING)
			return fail(a, errbuf, errcap, "trailing comma");
		if (st == CSVLIST_BAD_ITEM)
			return fail(a, errbuf, errcap, "empty or overlong CIDR in the list");
		if (parse_cidr(item, &a->c[a->n]) != 0)
			return fail(a, errbuf, errcap, "invalid CIDR '%s'", item);
		a->n++;
	}
	*out = a;
	return 0;
}

void ssrf_allow_free(struct ssrf_allow *a)
{
	free(a);
}
