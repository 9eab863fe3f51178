/*
 * ssrf: which addresses hookd may connect to.
 *
 * A delivery may only reach a publicly routable address, unless an operator
 * allowed a range (--allow-targets). The check is made on the socket address
 * actually being connected to (dispatch.c calls it from curl's open-socket
 * callback), so a host name that resolves to loopback (DNS rebinding) is
 * refused as surely as a literal 127.0.0.1.
 *
 * Refused: IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 * 192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15,
 * 198.51.100/24, 203.0.113/24, 224/4, 240/4; IPv6 everything outside
 * 2000::/3, and inside it 2001::/23, 2001:db8::/32, 2002::/16 (6to4, whose
 * relays are deprecated: refused whole) and 3fff::/20. IPv4-mapped
 * (::ffff:0:0/96), IPv4-compatible (::/96) and NAT64 (64:ff9b::/96,
 * 64:ff9b:1::/48) addresses are judged by the IPv4 address inside.
 */
#ifndef HK_SSRF_H
#define HK_SSRF_H

#include <stddef.h>

struct sockaddr;
struct ssrf_allow;

/* Parse "127.0.0.0/8,::1/128,10.1.2.3" (a bare address is one host) into a
 * new list; NULL or "" gives an empty list. 0, or -1 with a message. Free
 * with ssrf_allow_free. */
int ssrf_allow_parse(const char *csv, struct ssrf_allow **out, char *errbuf, size_t errcap);
void ssrf_allow_free(struct ssrf_allow *a);

/* NULL when sa is publicly routable, else a short reason ("loopback",
 * "private", ...). */
const char *ssrf_reason(const struct sockaddr *sa);

/* NULL when hookd may connect to sa (public, or in an allowed range), else
 * the reason it may not. */
const char *ssrf_check(const struct sockaddr *sa, const struct ssrf_allow *allow);

/* When host is an IP literal (dotted IPv4, or IPv6 with or without
 * brackets): set *reason (NULL when allowed) and return 1. Else return 0. */
int ssrf_check_literal(const char *host, const struct ssrf_allow *allow, const char **reason);

#endif
