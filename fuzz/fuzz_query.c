/* Query parameters: page, per_page, bucket_minutes, ids. */
#include "api.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	if (!s)
		return 0;
	long n;
	char id[UUID_STR_LEN];
	struct hk_err err;
	api_parse_int(s, 1, 100, &n);
	api_parse_int(s, 1, 1000000, &n);
	api_uuid(s, "delivery_", id, "delivery", &err);
	free(s);
	return 0;
}
