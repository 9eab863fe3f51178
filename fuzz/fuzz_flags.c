/* The --retry-schedule and --allow-targets flags. */
#include "fuzz.h"
#include "retry.h"
#include "ssrf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	if (!s)
		return 0;
	char e[256];
	struct retry_schedule sch;
	if (retry_schedule_parse(s, &sch, e, sizeof(e)) == 0)
		for (int i = 0; i <= sch.n + 1; i++)
			retry_delay_ms(&sch, i, 0xFFFFFFFFu);
	struct ssrf_allow *a = NULL;
	if (ssrf_allow_parse(s, &a, e, sizeof(e)) == 0)
		ssrf_allow_free(a);
	free(s);
	return 0;
}
