/* ISO 8601 times (start/end query parameters), durations and sizes (flags). */
#include "fuzz.h"
#include "timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	if (!s)
		return 0;
	int64_t ms;
	uint64_t n;
	char buf[TU_ISO_LEN];
	if (tu_parse_iso(s, &ms) == 0)
		tu_format_iso(ms, buf);
	tu_parse_duration_ms(s, &ms);
	tu_parse_size(s, &n);
	free(s);
	return 0;
}
