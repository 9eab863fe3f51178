/*
 * err: status values and the message buffer beside them. See err.h.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hk_status hk_fail(struct hk_err *err, hk_status st, const char *code, const char *fmt, ...)
{
	if (!err)
		return st;
	err->status = st;
	snprintf(err->code, sizeof(err->code), "%s", code ? code : hk_status_code(st));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return st;
}

void hk_err_clear(struct hk_err *err)
{
	if (!err)
		return;
	err->status = HK_OK;
	err->code[0] = '\0';
	err->msg[0] = '\0';
}

int hk_http_status(hk_status st)
{
	switch (st) {
	case HK_OK: return 200;
	case HK_EBADREQ: return 400;
	case HK_EUNAUTH: return 401;
	case HK_EFORBIDDEN: return 403;
	case HK_ENOTFOUND: return 404;
	case HK_ECONFLICT: return 409;
	case HK_ETOOBIG: return 413;
	case HK_EINVALID: return 422;
	case HK_ESTORE: return 503;
	case HK_ENOMEM:
	case HK_EINTERNAL: return 500;
	}
	return 500;
}

const char *hk_status_code(hk_status st)
{
	switch (st) {
	case HK_OK: return "ok";
	case HK_EBADREQ: return "bad_request";
	case HK_EUNAUTH: return "unauthorized";
	case HK_EFORBIDDEN: return "forbidden";
	case HK_ENOTFOUND: return "not_found";
	case HK_ECONFLICT: return "conflict";
	case HK_ETOOBIG: return "payload_too_large";
	case HK_EINVALID: return "invalid_field";
	case HK_ENOMEM: return "out_of_memory";
	case HK_ESTORE: return "store_unavailable";
	case HK_EINTERNAL: return "internal_error";
	}
	return "internal_error";
}
