/*
 * unit: the smallest test harness that does the job, header-only.
 *
 *   CHECK(cond, name)          ok when cond holds
 *   CHECK_STR(got, want, name) ok when the strings are equal (both shown if
 *                              not; a NULL on either side fails)
 *   CHECK_INT(got, want, name) ok when the integers are equal
 *   CHECK_STR_EQ, CHECK_INT_EQ the same two under longer names
 *   return unit_done();        prints "N passed, M failed", exit status
 *
 * Each check prints "ok - name" or "not ok - name (...)" on one line (control
 * characters in names are escaped so that a line is always one check);
 * tests/run.py adds up the closing lines of every unit binary. Not
 * thread-safe: call checks from one thread.
 */
#ifndef HK_UNIT_H
#define HK_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

/* s with control characters escaped, so that one check stays one line. */
static inline void unit_put(const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static inline void unit_report(int ok, const char *name, const char *detail)
{
	if (ok)
		unit_passed++;
	else
		unit_failed++;
	fputs(ok ? "ok - " : "not ok - ", stdout);
	unit_put(name);
	if (!ok && detail) {
		putchar(' ');
		unit_put(detail);
	}
	putchar('\n');
}

#define CHECK(cond, name) unit_report((cond) ? 1 : 0, (name), "(" #cond ")")

#define CHECK_STR(got, want, name)                                                   \
	do {                                                                          \
		const char *g_ = (got), *w_ = (want);                                 \
		char d_[512];                                                         \
		snprintf(d_, sizeof(d_), "(got \"%s\", want \"%s\")", g_ ? g_ : "(null)", \
		         w_ ? w_ : "(null)");                                         \
		unit_report(g_ && w_ && strcmp(g_, w_) == 0, (name), d_);            \
	} while (0)

#define CHECK_INT(got, want, name)                                                   \
	do {                                                                          \
		long long g_ = (long long)(got), w_ = (long long)(want);              \
		char d_[96];                                                          \
		snprintf(d_, sizeof(d_), "(got %lld, want %lld)", g_, w_);            \
		unit_report(g_ == w_, (name), d_);                                    \
	} while (0)

#define CHECK_STR_EQ(got, want, name) CHECK_STR(got, want, name)
#define CHECK_INT_EQ(got, want, name) CHECK_INT(got, want, name)

/* The closing line, alone: "N passed, M failed"; the exit status. */
static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	fflush(stdout);
	return unit_failed ? 1 : 0;
}

#endif
