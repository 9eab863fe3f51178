/*
 * err: hookd's one way to fail.
 *
 * Every fallible function returns an hk_status; HK_OK is zero so the idiom is
 *     if ((st = f(..., err)) != HK_OK) return st;
 * The human message travels beside the status in a caller-owned struct hk_err
 * (like curl's failf buffer), so no function allocates to report a failure.
 * The API layer maps a status to the spec's HTTP status and JSON error in one
 * place (api_send_error).
 */
#ifndef HK_ERR_H
#define HK_ERR_H

typedef enum hk_status {
	HK_OK = 0,
	HK_EBADREQ,    /* malformed input: bad JSON, bad query (400) */
	HK_EUNAUTH,    /* missing or unknown API key (401) */
	HK_EFORBIDDEN, /* wrong role (403) */
	HK_ENOTFOUND,  /* no such thing, or not yours (404) */
	HK_ECONFLICT,  /* state conflict, e.g. reused idempotency key (409) */
	HK_ETOOBIG,    /* body over the limit (413) */
	HK_EINVALID,   /* well-formed but invalid field (422) */
	HK_ENOMEM,     /* allocation failed (500) */
	HK_ESTORE,     /* the store failed (500 / retry later) */
	HK_EINTERNAL,  /* anything else that is our fault (500) */
} hk_status;

struct hk_err {
	hk_status status;
	char code[48];  /* snake_case machine code, e.g. "invalid_url" */
	char msg[256];  /* human text; never contains a secret */
};

/* Fill *err (if non-NULL) and return st. printf-style message. */
hk_status hk_fail(struct hk_err *err, hk_status st, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Clear *err to HK_OK with empty code and message. */
void hk_err_clear(struct hk_err *err);

/* The HTTP status that the API answers for st (200 for HK_OK). */
int hk_http_status(hk_status st);

/* A default snake_case code for st, used when a failure gave none. */
const char *hk_status_code(hk_status st);

#endif
