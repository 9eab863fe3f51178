/*
 * target: is this string an acceptable endpoint URL?
 *
 * https:// only, at most 2048 characters, a host, no user:password part, no
 * fragment, no whitespace or control characters; an IP-literal host (IPv4 in
 * any form curl accepts, e.g. 2130706433 or 0x7f.1, or bracketed IPv6) in a
 * range the SSRF policy refuses is refused here at once, unless allowed.
 * Host names are judged later, on the address actually connected to.
 */
#ifndef HK_TARGET_H
#define HK_TARGET_H

#include "err.h"

struct ssrf_allow;

#define TARGET_URL_MAX 2048

/* HK_OK, or HK_EINVALID with code "invalid_url" and a message naming url. */
hk_status target_validate(const char *url, const struct ssrf_allow *allow, struct hk_err *err);

#endif
