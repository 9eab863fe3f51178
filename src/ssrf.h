/*
 * ssrf: which addresses hookd may connect to.
 *
 * A delivery may only reach a publicly routable address, unless an operator
 * allowed a range (--allow-targets). The check is made on the socket address
 * actually being connected to (dispatch.c calls it from curl's open-socket
 * callback), so a host name that resolves to loopback (DNS rebinding) is
 * refused as surely as a literal 127.0.0.1.
 *
 * Refused, the whole table:
 *   IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24,
 *   192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24,
 *   203.0.113/24, 224/4, 240/4 (so 255.255.255.255 too).
 *   IPv6 everything outside 2000::/3 (so ::/8 with :: and ::1, fc00::/7,
 *   fe80::/10, fec0::/10, ff00::/8), and inside it 2001::/23 (Teredo and
 *   other IETF assignments), 2001:db8::/32, 3fff::/20 (documentation) and
 *   2002::/16: 6to4 is refused whole rather than judged by the IPv4 inside,
 *   because its relays are deprecated (RFC 7526) and a 6to4 address routes
 *   through whichever relay is nearest, not to that IPv4 host.
 * IPv6 forms that carry an IPv4 address are judged by that IPv4 address:
 * mapped ::ffff:0:0/96, compatible ::/96 (but :: and ::1 are themselves),
 * NAT64 64:ff9b::/96, and the local-use NAT64 prefix 64:ff9b:1::/48 read with
 * the IPv4 in its last 32 bits, as a /96 sub-prefix places it (RFC 6052).
 * So ::ffff:8.8.8.8 is allowed and ::ffff:127.0.0.1 refused.
 *
 * The allow list is checked against the address as given and, for those
 * forms, against the IPv4 inside: allowing 127.0.0.0/8 also allows
 * ::ffff:127.0.0.1. Everything here is thread-safe; an allow list is
 * immutable once parsed and may be shared by all threads.
 */
#ifndef HK_SSRF_H
#define HK_SSRF_H

#include <stddef.h>

struct sockaddr;
struct ssrf_allow;

/* Parse a comma-separated list of CIDRs, IPv4 or IPv6, into a new list:
 * "127.0.0.0/8,::1/128,10.1.2.3" (a bare address is one host; spaces around
 * items are ignored; host bits under the mask are ignored). NULL or "" gives
 * an empty, non-NULL list. On success *out owns the list (free it with
 * ssrf_allow_free) and 0 is returned; on failure *out is untouched, a
 * message naming the bad item is written to errbuf (when errbuf is non-NULL
 * and errcap > 0), and -1 is returned. */
int ssrf_allow_parse(const char *csv, struct ssrf_allow **out, char *errbuf, size_t errcap);

/* Free a list from ssrf_allow_parse; NULL is fine. */
void ssrf_allow_free(struct ssrf_allow *a);

/* NULL when sa (AF_INET or AF_INET6) is publicly routable, else a short
 * static reason: "unspecified", "loopback", "private", "carrier-grade NAT",
 * "link-local", "site-local", "unique local", "multicast", "broadcast",
 * "documentation", "benchmarking", "6to4", "reserved"; any other family (or
 * NULL) gives "not an IP address". */
const char *ssrf_reason(const struct sockaddr *sa);

/* NULL when hookd may connect to sa (public, or in a range of allow, which
 * may be NULL for none), else the static reason it may not. */
const char *ssrf_check(const struct sockaddr *sa, const struct ssrf_allow *allow);

/* When host is an IP literal, set *reason as ssrf_check would (NULL when
 * allowed) and return 1; else return 0 and leave *reason alone. Literals:
 * IPv6 with or without brackets (a "%zone" suffix is ignored), and IPv4 in
 * any form the resolver takes as one (inet_aton: 127.0.0.1, 127.1,
 * 2130706433, 0x7f.1, 0177.0.0.1), with or without a trailing dot. */
int ssrf_check_literal(const char *host, const struct ssrf_allow *allow, const char **reason);

#endif
