/*
 * unit: the smallest test harness that does the job, header-only.
 *
 *   CHECK(cond, name)          ok when cond holds
 *   CHECK_STR(got, want, name) ok when the strings are equal (both shown if not)
 *   CHECK_INT(got, want, name) ok when the integers are equal
 *   return unit_done();        prints "N passed, M failed", exit status
 *
 * Each check prints "ok - name" or "not ok - name (...)"; tests/run.py adds
 * up the closing lines of every unit binary.
 */
#ifndef HK_UNIT_H
#define HK_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

static inline void unit_report(int ok, const char *name, const char *detail)
{
	if (ok) {
		unit_passed++;
		printf("ok - %s\n", name);
	} else {
		unit_failed++;
		printf("not ok - %s%s%s\n", name, detail ? " " : "", detail ? detail : "");
	}
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

static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
