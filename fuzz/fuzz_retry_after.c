/* The Retry-After header of a receiver's answer. */
#include "fuzz.h"
#include "retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	if (!s)
		return 0;
	retry_after_ms(s, 1778162400000LL);
	free(s);
	return 0;
}
