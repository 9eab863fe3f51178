/*
 * target: is this string an acceptable endpoint URL? (spec "Targets")
 *
 * Accepted: an absolute https:// URL (scheme in any case) of at most 2048
 * characters, with a host, an optional port (1-65535), path and query.
 * Refused, with the reason in the message:
 *   - anything but https (http included: deliveries carry signatures and
 *     payloads that must not travel in clear);
 *   - a user or password part, even an empty one ("https://@host");
 *   - a fragment, even an empty one: it is never sent to the receiver, so a
 *     URL with one would not mean what it says;
 *   - whitespace, control characters or DEL anywhere (a URL that needs
 *     them in its path or query has them percent-encoded);
 *   - an IP-literal host in a range the SSRF policy refuses, unless allowed:
 *     IPv4 in any form curl or the resolver accepts (127.0.0.1, 127.1,
 *     2130706433, 0x7f.1, 0177.0.0.1, a trailing dot) or bracketed IPv6.
 * Host names are not resolved here: they are judged on the address actually
 * connected to (dispatch, via ssrf_check). Parsing is libcurl's own URL API,
 * the parser the deliveries use, so what is validated is what is fetched.
 */
#ifndef HK_TARGET_H
#define HK_TARGET_H

#include "err.h"

struct ssrf_allow;

#define TARGET_URL_MAX 2048

/* Validate url (may be NULL) against the rules above, with allow (may be
 * NULL) the operator's allowed ranges. HK_OK; or HK_EINVALID with code
 * "invalid_url" and a message that starts with "url" and says why, e.g.
 * "url must use https", "url targets a refused address (loopback)"; or
 * HK_ENOMEM. err may be NULL. Thread-safe; never crashes on any input. */
hk_status target_validate(const char *url, const struct ssrf_allow *allow, struct hk_err *err);

#endif
