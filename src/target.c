/*
 * target: endpoint URL validation on libcurl's URL parser. See target.h.
 *
 * curl_url() parses exactly as the dispatcher's transfers will, so what is
 * validated is what will be connected to; its host comes back normalized
 * (IPv4 in dotted form whatever way it was written), which the SSRF literal
 * check then judges.
 */
#include "target.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <string.h>

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

/* The checks that need the parsed URL. */
static hk_status check_parts(CURLU *u, const struct ssrf_allow *allow, struct hk_err *err)
{
	char *part = NULL;
	hk_status st = HK_OK;
	if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK || strcmp(part, "https") != 0)
		st = invalid(err, "must use https");
	curl_free(part);
	part = NULL;
	if (st == HK_OK && (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	                    curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK))
		st = invalid(err, "must not contain credentials");
	curl_free(part);
	part = NULL;
	if (st == HK_OK && curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
		st = invalid(err, "must not contain a fragment");
	curl_free(part);
	part = NULL;
	if (st == HK_OK && (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK || !*part))
		st = invalid(err, "must have a host");
	const char *reason = NULL;
	if (st == HK_OK && ssrf_check_literal(part, allow, &reason) && reason)
		st = hk_fail(err, HK_EINVALID, "invalid_url", "url targets a refused address (%s)", reason);
	curl_free(part);
	return st;
}

hk_status target_validate(const char *url, const struct ssrf_allow *allow, struct hk_err *err)
{
	if (!url || !*url)
		return invalid(err, "is required");
	if (strlen(url) > TARGET_URL_MAX)
		return invalid(err, "must be at most 2048 characters");
	if (has_bad_chars(url))
		return invalid(err, "must not contain spaces or control characters");
	if (strncasecmp(url, "https://", 8) != 0)
		return invalid(err, "must use https");
	/* curl would read https:///host as https://host: say what is wrong instead. */
	if (url[8] == '/' || url[8] == '\0')
		return invalid(err, "must have a host");
	CURLU *u = curl_url();
	if (!u)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	hk_status st;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
		st = invalid(err, "is not a valid URL");
	else
		st = check_parts(u, allow, err);
	curl_url_cleanup(u);
	return st;
}
