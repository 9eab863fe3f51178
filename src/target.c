/*
 * target: endpoint URL validation on libcurl's URL parser. See target.h.
 *
 * Cheap checks on the raw string come first (length, bytes, scheme,
 * fragment), so curl only sees plausible URLs. curl_url() then parses
 * exactly as the dispatcher's transfers will; its host comes back normalized
 * (IPv4 in dotted form whatever way it was written, IPv6 zone id split off),
 * and ssrf_check_literal judges it, also taking any numeric form curl left
 * alone the way the resolver would read it.
 */
#include "target.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "ssrf.h"

static hk_status invalid(struct hk_err *err, const char *why)
{
	return hk_fail(err, HK_EINVALID, "invalid_url", "url %s", why);
}

static bool has_bad_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* True when curl has that part of u (an empty user counts). */
static bool has_part(CURLU *u, CURLUPart what)
{
	char *part = NULL;
	bool has = curl_url_get(u, what, &part, 0) == CURLUE_OK;
	curl_free(part);
	return has;
}

/* The host and port checks. */
static hk_status check_host(CURLU *u, const struct ssrf_allow *allow, struct hk_err *err)
{
	char *port = NULL;
	bool zero_port = curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
	                 strspn(port, "0") == strlen(port);
	curl_free(port);
	if (zero_port)
		return invalid(err, "must have a port between 1 and 65535");
	char *host = NULL;
	hk_status st = HK_OK;
	const char *reason = NULL;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[strspn(host, ".")])
		st = invalid(err, "must have a host"); /* "." or ".." names nothing */
	else if (ssrf_check_literal(host, allow, &reason) && reason)
		st = hk_fail(err, HK_EINVALID, "invalid_url", "url targets a refused address (%s)", reason);
	curl_free(host);
	return st;
}

/* The checks that need the parsed URL. */
static hk_status check_parts(CURLU *u, const struct ssrf_allow *allow, struct hk_err *err)
{
	char *scheme = NULL;
	bool https = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	             strcmp(scheme, "https") == 0;
	curl_free(scheme);
	if (!https)
		return invalid(err, "must use https");
	if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
	    has_part(u, CURLUPART_OPTIONS))
		return invalid(err, "must not contain credentials");
	return check_host(u, allow, err);
}

hk_status target_validate(const char *url, const struct ssrf_allow *allow, struct hk_err *err)
{
	if (!url || !*url)
		return invalid(err, "is required");
	if (strnlen(url, TARGET_URL_MAX + 1) > TARGET_URL_MAX)
		return invalid(err, "must be at most 2048 characters");
	if (has_bad_chars(url))
		return invalid(err, "must not contain spaces or control characters");
	if (strncasecmp(url, "https://", 8) != 0)
		return invalid(err, "must use https");
	/* curl would read https:///host as https://host: say what is wrong instead. */
	if (url[8] == '/' || url[8] == '\0')
		return invalid(err, "must have a host");
	/* '#' is only ever a fragment; curl drops an empty one without a word. */
	if (strchr(url, '#'))
		return invalid(err, "must not contain a fragment");
	CURLU *u = curl_url();
	if (!u)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	hk_status st;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		st = invalid(err, "is not a valid URL");
	else
		st = check_parts(u, allow, err);
	curl_url_cleanup(u);
	return st;
}
