/*
 * log: one logfmt line per event to stderr:
 *     ts=2026-05-07T14:00:00.123Z level=info msg="request" method=GET path=/healthz status=200
 *
 * Callers pass key/value pairs as a printf format of their own ("k=%s k2=%d");
 * string values that may hold spaces or quotes go through log_q(), which quotes
 * and escapes them into a small per-call buffer. Nothing secret is ever passed
 * here: callers log ids, never keys, secrets or URLs with userinfo.
 * Thread-safe: each line is formatted in a local buffer and written with one
 * write(2), so lines from different threads never interleave.
 */
#ifndef HK_LOG_H
#define HK_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the minimum level that is written (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parse "debug", "info", "warn" or "error"; returns -1 when unknown. */
int log_level_parse(const char *name);

/* True when a line at this level would be written (to skip costly formatting). */
int log_enabled(enum log_level level);

/* Write one line: msg is quoted when needed; fmt (may be NULL) adds key=value pairs. */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Quote s for logfmt into buf (always NUL-terminated, truncated to cap). Returns buf. */
const char *log_q(char *buf, unsigned cap, const char *s);

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
